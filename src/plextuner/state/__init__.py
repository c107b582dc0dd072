"""Published state in the data dir, written atomically, loaded at start."""

from plextuner.state.store import fsync_dir, read_json, write_atomic, write_json

__all__ = ["fsync_dir", "read_json", "write_atomic", "write_json"]
