"""`python -m hubbletui` is the `hubbletui` command."""

from hubbletui.cli import run

run()
