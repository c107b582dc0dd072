"""The built-in demo provider: channels without an IPTV account."""
