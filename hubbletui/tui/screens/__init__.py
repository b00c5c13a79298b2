"""The TUI's screens: the main view (drops by pod, flows), drop detail, policy view, help."""
