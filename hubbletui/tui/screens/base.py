"""What every screen of the app has: the header, its own body, the status bar and the key bar."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Header

from hubbletui.tui.widgets.key_bar import KeyBar
from hubbletui.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from hubbletui.tui.app import HubbleApp

HEADER_ICON = "◆"  # Textual's default icon is not in Fira Code


class HubbleScreen(Screen):
    _status_bar: StatusBar | None = None

    @property
    def hubble(self) -> HubbleApp:
        return self.app  # type: ignore[return-value]

    @property
    def status_bar(self) -> StatusBar | None:
        """This screen's status bar (None before it is composed), found once: the app redraws it every tick,
        and a DOM query costs."""
        if self._status_bar is None:
            try:
                self._status_bar = self.query_one(StatusBar)
            except NoMatches:
                return None
        return self._status_bar

    def compose(self) -> ComposeResult:
        yield Header(icon=HEADER_ICON)
        yield from self.body()
        yield StatusBar(id="status")
        yield KeyBar()

    def body(self) -> ComposeResult:
        """The widgets between the header and the status bar."""
        return iter(())

    def shows_binding(self, binding) -> bool:
        """Whether the key bar lists ``binding`` here (a key that only works with something present)."""
        return True
