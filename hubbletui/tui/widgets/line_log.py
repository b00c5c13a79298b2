"""A bounded log of one-line `rich.text.Text` entries drawn with Textual's Line API.

Writing only appends the Text; a line is turned into a strip when it first scrolls into view, and kept in a
small cache. RichLog renders every line as it is written (and all of them again on a backfill), which at
thousands of flows a second is time the keys wait for. Entries are drawn literally, never read as markup.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from rich.text import Text
from textual.cache import LRUCache
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from hubbletui.tui.widgets.strips import text_segments


class LineLog(ScrollView):
    """Follows the newest line while scrolled to the bottom; scrolled up, the lines in view stay put."""

    DEFAULT_CSS = """
    LineLog {
        background: $surface;
        color: $foreground;
    }
    """

    def __init__(self, max_lines: int, **kwargs):
        super().__init__(**kwargs)
        self._entries: deque[Text] = deque(maxlen=max_lines)
        self._first = 0  # sequence number of the oldest entry kept: strips are cached by sequence number
        self._widest = 0
        self._strips: LRUCache[int, Strip] = LRUCache(256)

    @property
    def lines(self) -> list[Strip]:
        """Every entry as a strip (for tests: drawing renders only what is in view)."""
        return [self._strip(self._first + i, text) for i, text in enumerate(self._entries)]

    def write_lines(self, lines: Iterable[Text]) -> None:
        entries = self._entries
        at_end = self.scroll_offset.y >= self.max_scroll_y
        before = len(entries)
        written = 0
        for text in lines:
            entries.append(text)
            self._widest = max(self._widest, text.cell_len)
            written += 1
        if not written:
            return
        pushed_out = before + written - len(entries)
        self._first += pushed_out
        self.virtual_size = Size(self._widest, len(entries))
        if at_end:  # after the next layout, which knows the new height
            self.scroll_end(animate=False, immediate=False, x_axis=False)
        elif pushed_out:
            self.scroll_to(y=max(0, self.scroll_offset.y - pushed_out), animate=False)
        self.refresh()

    def clear(self) -> None:
        self._first += len(self._entries)
        self._entries.clear()
        self._widest = 0
        self.virtual_size = Size(0, 0)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self.rich_style
        index = scroll_y + y
        if index >= len(self._entries):
            return Strip.blank(width, base)
        strip = self._strip(self._first + index, self._entries[index])
        return strip.apply_style(base).crop_extend(scroll_x, scroll_x + width, base)

    def _strip(self, seq: int, text: Text) -> Strip:
        strip = self._strips.get(seq)
        if strip is None:
            strip = self._strips[seq] = Strip(text_segments(text, self.app.console))
        return strip
