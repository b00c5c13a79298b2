"""`?`: every key and command, from the one table in keys.py."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from hubbletui.tui.keys import COMMANDS, KEYS


def help_table() -> Table:
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False, expand=True)
    table.add_column("where", style="dim", no_wrap=True)
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("what")
    for where, key, what in KEYS:
        table.add_row(Text(where), Text(key), Text(what))
    table.add_row("", "", "")
    for command, what in COMMANDS:
        table.add_row(Text("command"), Text(command), Text(what))
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss_help", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 100; max-width: 95%; height: auto; max-height: 90%;
                                  border: round $accent; background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = "hubbletui keys (esc to close)"
            yield Static(help_table(), id="help-table")

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
