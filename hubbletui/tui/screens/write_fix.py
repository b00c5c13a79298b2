"""`w`: where to write the selected fix; enter writes (atomically, by the caller), esc cancels."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class WriteFixScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    WriteFixScreen { align: center middle; }
    WriteFixScreen > Vertical { width: 100; max-width: 95%; height: auto; border: round $accent;
                                background: $surface; padding: 0 1; }
    """

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "write the fix to (enter writes, esc cancels)"
            yield Static("An existing file is replaced whole, never half-written.", markup=False)
            yield Input(self.path, id="path")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
