"""The Textual front end. Only this package and hubbletui/cli/tui_cmd.py import Textual."""
