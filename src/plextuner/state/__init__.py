"""The published state: every device's lineup, written atomically, loaded at start."""

from plextuner.state.published import ProviderState, PublishedState, load_state, save_state

__all__ = ["ProviderState", "PublishedState", "load_state", "save_state"]
