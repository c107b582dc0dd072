"""Post-validation: rate-limited probes, per-host limits, run guard."""
