"""HDHomeRun emulation: HTTP device endpoints and UDP discovery."""
