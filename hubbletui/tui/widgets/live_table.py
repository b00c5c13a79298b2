"""A table of live, ranked rows drawn with Textual's Line API: only the visible lines are rendered, each from a
strip cached per row, and a sync repaints only the lines whose row changed or moved.

DataTable repaints every visible cell after any update (tens of milliseconds at 160x48), and thousands of flows
a second update some row all the time, so keys waited behind repaints. Here an update costs what changed on
screen: cells are compared per row, a row's strip is dropped only when its cells changed, and only the lines
showing a changed or moved row are marked dirty.

Cells are `rich.text.Text` (drawn literally: their plain text and style, never markup) or `Num`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from hubbletui.tui.cells import Num, column_label, same_cell
from hubbletui.tui.widgets.strips import text_segments

HEADER_LINES = 1


class LiveTable(ScrollView, can_focus=True):
    """``columns``: (key, label, width); the first is the rank, filled in by `sync`. Each column is drawn
    ``width + 2`` cells wide: cells carry their own one-space margin."""

    DEFAULT_CSS = """
    LiveTable {
        background: $surface;
        color: $foreground;
        & > .live-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        & > .live-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus {
            background-tint: $foreground 5%;
            & > .live-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
    }
    """
    COMPONENT_CLASSES = {"live-table--header", "live-table--cursor"}
    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "edge(0)", "First", show=False),
        Binding("end", "edge(1)", "Last", show=False),
    ]

    class Selected(Message):
        """The row under the cursor was clicked again (enter is the screen's binding)."""

        def __init__(self, table: LiveTable, row_id: str) -> None:
            super().__init__()
            self.table = table
            self.row_id = row_id

        @property
        def control(self) -> LiveTable:
            return self.table

    def __init__(self, columns: Sequence[tuple[str, str, int]], **kwargs):
        super().__init__(**kwargs)
        self._columns = [(key, width + 2) for key, _, width in columns]
        self._column_index = {key: i for i, (key, _) in enumerate(self._columns)}
        self._labels = [column_label(key, label) for key, label, _ in columns]
        self._width = sum(width for _, width in self._columns)
        # each cell's segments name their column, as DataTable's do; it also keeps a screenshot's SVG text runs
        # one per cell (a run spanning cells of one style drifts in some SVG renderers)
        self._column_meta = [Style.from_meta({"column": i}) for i in range(len(self._columns))]
        self._ids: list[str] = []  # shown rows, in order
        self._index: dict[str, int] = {}
        self._cells: dict[str, tuple] = {}  # row id -> cells as last synced
        self._strips: dict[str, Strip] = {}  # row id -> its rendered line (without the cursor), while valid
        self._styles: tuple[Style, Style, Style] | None = None  # background, header, cursor of this draw
        self._header: Strip | None = None
        self.cursor_row = 0

    # ---------------------------------------------------------------------------------------------------
    # what is shown

    @property
    def row_count(self) -> int:
        return len(self._ids)

    @property
    def row_ids(self) -> list[str]:
        return list(self._ids)

    @property
    def selected_id(self) -> str | None:
        return self._ids[self.cursor_row] if 0 <= self.cursor_row < len(self._ids) else None

    def get_cell(self, row_id: str, column: str) -> object:
        return self._cells[row_id][self._column_index[column]]

    def sync(self, rows: Sequence[tuple[str, Hashable]], make_cells: Callable[[Hashable], tuple],
             dirty: Callable[[Hashable], bool]) -> None:
        """Show ``rows`` (row id, record) in this order; cells are rebuilt only for records that are new, moved,
        or for which ``dirty(record)`` is true. The cursor stays on its row."""
        selected = self.selected_id
        before = self._ids
        cells, strips = self._cells, self._strips
        ids: list[str] = []
        changed: set[str] = set()
        for rank, (row_id, record) in enumerate(rows, start=1):
            ids.append(row_id)
            old = cells.get(row_id)
            if old is not None and old[0].value == rank and not dirty(record):
                continue
            new = (Num(rank, style="dim"), *make_cells(record))
            if old is None or not _same_cells(new, old):
                cells[row_id] = new
                strips.pop(row_id, None)
                changed.add(row_id)
        if len(cells) > len(ids):
            wanted = set(ids)
            for gone in [row_id for row_id in cells if row_id not in wanted]:
                del cells[gone]
                strips.pop(gone, None)
        self._ids = ids
        self._index = {row_id: i for i, row_id in enumerate(ids)}
        cursor_before = self.cursor_row
        if selected is not None and selected in self._index:
            self.cursor_row = self._index[selected]
        else:
            self.cursor_row = min(self.cursor_row, max(len(ids) - 1, 0))
        if len(ids) != len(before):
            self.virtual_size = Size(self._width, len(ids) + HEADER_LINES)
        self._repaint_moved(before, changed, cursor_before)

    def _repaint_moved(self, before: list[str], changed: set[str], cursor_before: int) -> None:
        """Mark dirty the visible lines whose row is another one now, or changed, or gained or lost the cursor."""
        top = round(self.scroll_y)
        dirty_lines = []
        for y in range(HEADER_LINES, self.size.height):
            index = top + y - HEADER_LINES
            now = self._ids[index] if index < len(self._ids) else None
            was = before[index] if index < len(before) else None
            if now != was or now in changed or (index in (cursor_before, self.cursor_row)
                                                  and cursor_before != self.cursor_row):
                dirty_lines.append(y)
        self._refresh_lines(dirty_lines)

    def _refresh_lines(self, lines: list[int]) -> None:
        """Dirty the given viewport lines, contiguous runs as one region each."""
        width = max(self.size.width, self._width)
        start = previous = None
        for y in [*lines, None]:
            if y is not None and previous is not None and y == previous + 1:
                previous = y
                continue
            if start is not None:
                self.refresh(Region(0, start, width, previous - start + 1))
            start = previous = y

    # ---------------------------------------------------------------------------------------------------
    # drawing

    def render_lines(self, crop: Region) -> list[Strip]:
        self._styles = (self.rich_style, self.get_component_rich_style("live-table--header"),
                        self.get_component_rich_style("live-table--cursor"))
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        """Cached strips carry the cells' own styles; the background (which focus changes) goes on here."""
        base, header, cursor = self._styles or (self.rich_style, Style.null(), Style.null())
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        if y < HEADER_LINES:
            if self._header is None:
                self._header = self._render_row(self._labels)
            fill = base + header
            strip = self._header.apply_style(fill)
        else:
            index = scroll_y + y - HEADER_LINES
            if index >= len(self._ids):
                return Strip.blank(width, base)
            row_id = self._ids[index]
            strip = self._strips.get(row_id)
            if strip is None:
                strip = self._strips[row_id] = self._render_row(self._cells[row_id])
            if index == self.cursor_row:
                fill = base + cursor
                strip = Strip(Segment.apply_style(strip, base, cursor))
            else:
                fill = base
                strip = strip.apply_style(base)
        return strip.crop_extend(scroll_x, scroll_x + width, fill)

    def _render_row(self, cells: Sequence[object]) -> Strip:
        console = self.app.console
        segments: list[Segment] = []
        for (_, width), column, value in zip(self._columns, self._column_meta, cells, strict=True):
            text = value.__rich__() if isinstance(value, Num) else value
            text = text.copy() if isinstance(text, Text) else Text(str(value))
            text.truncate(width, overflow="ellipsis")
            text.align("right" if text.justify == "right" else "left", width)
            segments += Segment.apply_style(text_segments(text, console), post_style=column)
        return Strip(segments)

    # ---------------------------------------------------------------------------------------------------
    # moving the cursor

    def move_cursor(self, row: int) -> None:
        if not self._ids:
            return
        row = max(0, min(row, len(self._ids) - 1))
        if row == self.cursor_row:
            return
        before, self.cursor_row = self.cursor_row, row
        self._scroll_to_cursor()
        top = round(self.scroll_y)
        self._refresh_lines(sorted({i - top + HEADER_LINES for i in (before, row)
                                    if HEADER_LINES <= i - top + HEADER_LINES < self.size.height}))

    def _scroll_to_cursor(self) -> None:
        visible = max(1, self.scrollable_content_region.height - HEADER_LINES)
        top = round(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False)

    def action_move(self, step: int) -> None:
        self.move_cursor(self.cursor_row + step)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self.cursor_row + direction * max(1, self.scrollable_content_region.height - HEADER_LINES))

    def action_edge(self, end: int) -> None:
        self.move_cursor(len(self._ids) - 1 if end else 0)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < HEADER_LINES:
            return
        index = round(self.scroll_y) + offset.y - HEADER_LINES
        if index >= len(self._ids):
            return
        if index == self.cursor_row:
            self.post_message(self.Selected(self, self._ids[index]))
        else:
            self.move_cursor(index)


def _same_cells(a: tuple, b: tuple) -> bool:
    return all(same_cell(x, y) for x, y in zip(a, b, strict=True))
