"""The daemon's web console: pages, live events, buttons, and who may see and press them (issue 15)."""
