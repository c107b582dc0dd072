"""plextuner: IPTV providers presented to Plex as HDHomeRun network tuners."""

__version__ = "0.1.0"

__all__ = ["__version__"]
