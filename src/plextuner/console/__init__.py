"""The operator's console: channels, live sessions, overrides, setup help (server-rendered pages
on the admin port, and the JSON API they are built from)."""
