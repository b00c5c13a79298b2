"""The one-line prompt at the bottom: `/` to filter (applied as you type), `:` for commands."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input

FILTER, COMMAND = "filter", "command"
_PLACEHOLDER = {
    FILTER: "filter: words  !not  ns:NAME  pod:NAME  verdict:dropped|forwarded|refused  port:N  "
            "(enter keeps, esc undoes)",
    COMMAND: "command: ns NAME | pod NAME | ns | drops | flows | policy POD | pause | follow | help | q",
}


class Prompt(Input):
    DEFAULT_CSS = """
    Prompt { display: none; height: 1; border: none; padding: 0 1; margin: 0; }
    Prompt:focus { border: none; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    class Done(Message):
        """The prompt closed: ``value`` is what was typed, or None when it was cancelled."""

        def __init__(self, mode: str, value: str | None):
            super().__init__()
            self.mode = mode
            self.value = value

    class Typed(Message):
        def __init__(self, mode: str, value: str):
            super().__init__()
            self.mode = mode
            self.value = value

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.mode = FILTER

    def open(self, mode: str, value: str = "") -> None:
        self.mode = mode
        self.placeholder = _PLACEHOLDER[mode]
        self.value = value
        self.cursor_position = len(value)
        self.display = True
        self.focus()

    def _close(self, value: str | None) -> None:
        self.display = False
        self.post_message(self.Done(self.mode, value))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self.display:
            self.post_message(self.Typed(self.mode, event.value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._close(event.value)

    def action_cancel(self) -> None:
        self._close(None)
