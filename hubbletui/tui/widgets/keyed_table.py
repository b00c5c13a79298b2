"""A DataTable whose rows mirror an ordered list of keyed records, updated in place.

Each sync compares the wanted rows with what is shown: changed cells are updated with `update_cell`, new rows
added, the order fixed with one `sort` on the rank column, and the cursor kept on the same key. Rows that
left are removed one by one only when they are few; when many left, the table is rebuilt in one go (DataTable
re-indexes every row on each `remove_row`, so trimming row by row is quadratic).

For the drop detail's few rows. DataTable repaints every visible cell after any update, so the main screen's
tables, updated while flows stream, are `LiveTable`s instead.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

from textual.widgets import DataTable

from hubbletui.tui.cells import Num, column_label, same_cell

RANK = "rank"
REBUILD_FRACTION = 0.25


class KeyedTable(DataTable):
    """``columns``: (key, label, width). The first column is the rank, used to order rows."""

    def __init__(self, columns: Sequence[tuple[str, str, int]], **kwargs):
        super().__init__(cursor_type="row", zebra_stripes=False, cell_padding=0, **kwargs)
        self._column_spec = columns
        self._shown: dict[str, tuple] = {}  # row id -> cells as last written
        self._order: list[str] = []

    def on_mount(self) -> None:
        for key, label, width in self._column_spec:
            self.add_column(column_label(key, label, "bold"), key=key, width=width + 2)

    @property
    def selected_id(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - the cursor is off the table while it is rebuilt
            return None

    def sync(self, rows: Sequence[tuple[str, Hashable]], make_cells: Callable[[Hashable], tuple],
             dirty: Callable[[Hashable], bool]) -> None:
        """Show ``rows`` (row id, record) in this order; cells are rebuilt only for records that are new or
        for which ``dirty(record)`` is true, and written only where they differ."""
        wanted_ids = [row_id for row_id, _ in rows]
        wanted = set(wanted_ids)
        gone = [row_id for row_id in self._shown if row_id not in wanted]
        keep_cursor = self.selected_id
        if gone and len(gone) > max(8, REBUILD_FRACTION * len(self._shown)):
            self.clear()
            self._shown.clear()
        else:
            for row_id in gone:
                self.remove_row(row_id)
                del self._shown[row_id]
        columns = [key for key, _, _ in self._column_spec]
        for rank, (row_id, record) in enumerate(rows, start=1):
            old = self._shown.get(row_id)
            if old is not None and not dirty(record) and old[0].value == rank:
                continue
            cells = (Num(rank, style="dim"), *make_cells(record))
            if old is None:
                self.add_row(*cells, key=row_id)
            else:
                for column, new, before in zip(columns, cells, old, strict=True):
                    if not same_cell(new, before):
                        self.update_cell(row_id, column, new)
            self._shown[row_id] = cells
        if wanted_ids != self._order:
            self.sort(RANK, key=lambda num: num.value)
            self._order = wanted_ids
            if keep_cursor is not None and keep_cursor in self._shown:
                self.move_cursor(row=self.get_row_index(keep_cursor), animate=False, scroll=False)
