"""Plex Media Server API client."""
