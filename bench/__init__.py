"""Benchmarks: each module has main(); ratios against a baseline measured in the same run."""
