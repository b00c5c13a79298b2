"""The bottom line of key hints: the screen's and the app's shown bindings, drawn once.

Textual's Footer rebuilds its widgets whenever focus moves (every switch between the two tables), which costs
a full layout of the screen; these hints never change while a screen is up, so one line of text is enough.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

KEY_STYLE = "bold orange1"


class KeyBar(Widget):
    DEFAULT_CSS = """
    KeyBar { height: 1; background: $panel; color: $text-muted; padding: 0 1; }
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._text = Text()

    def on_mount(self) -> None:
        app, screen = self.app, self.screen
        seen: set[str] = set()
        text = Text(no_wrap=True, overflow="ellipsis")
        for binding in [*screen.BINDINGS, *app.BINDINGS]:
            if not getattr(binding, "show", True) or binding.action in seen or not screen.shows_binding(binding):
                continue
            seen.add(binding.action)
            text.append(app.get_key_display(binding), KEY_STYLE)
            text.append(f" {binding.description}  ")
        text.append("ctrl+p", KEY_STYLE)
        text.append(" palette")
        self._text = text
        self.refresh()

    def render(self) -> Text:
        return self._text
