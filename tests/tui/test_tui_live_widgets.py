"""The Line-API widgets of the main screen: LiveTable redraws only the rows that changed and keeps its cursor on
its row; LineLog follows the newest line, or holds still when scrolled up. Both draw untrusted text literally."""

from __future__ import annotations

from textual.app import App, ComposeResult

from hubbletui.tui.cells import Num, cell
from hubbletui.tui.widgets.line_log import LineLog
from hubbletui.tui.widgets.live_table import LiveTable

COLUMNS = [("rank", "#", 3), ("name", "NAME", 20), ("count", "COUNT", 6)]


class CountingTable(LiveTable):
    """Records the rows it turns into strips and the lines it draws (what a sync costs on screen)."""

    rendered: list[str]
    drawn: list[int]

    def _render_row(self, cells):
        self.rendered.append(cells[1].plain.strip())
        return super()._render_row(cells)

    def render_line(self, y):
        self.drawn.append(y)
        return super().render_line(y)


class TableApp(App):
    def __init__(self):
        super().__init__()
        self.selected: list[str] = []

    def compose(self) -> ComposeResult:
        table = CountingTable(COLUMNS, id="table")
        table.rendered, table.drawn = [], []
        yield table

    def on_live_table_selected(self, event: LiveTable.Selected) -> None:
        self.selected.append(event.row_id)


def make_cells(record: tuple[str, int]) -> tuple:
    name, count = record
    return cell(name), Num(count)


def sync(table: LiveTable, records: list[tuple[str, int]], dirty=lambda record: True) -> None:
    table.sync([(name, (name, count)) for name, count in records], make_cells, dirty)


async def test_a_sync_redraws_only_the_visible_rows_that_changed():
    app = TableApp()
    async with app.run_test(size=(60, 12)) as pilot:  # a header and 11 rows in view
        table = app.query_one(CountingTable)
        records = [(f"pod-{i:02d}", 100 - i) for i in range(30)]
        sync(table, records)
        await pilot.pause()
        assert table.rendered.count("pod-00") == 1 and "pod-20" not in table.rendered  # only what is in view
        table.rendered.clear()
        table.drawn.clear()

        records[3] = ("pod-03", 97 + 1)  # one visible row changed
        records[25] = ("pod-25", 75 + 1)  # one out of view: kept as cells, drawn when scrolled to
        sync(table, records, dirty=lambda record: record[0] in ("pod-03", "pod-25"))
        await pilot.pause()
        assert table.rendered == ["pod-03"] and table.drawn == [4]  # its line, under the header
        assert table.get_cell("pod-03", "count").value == 98
        table.rendered.clear()
        table.drawn.clear()

        sync(table, records)  # all said dirty, none changed: nothing to draw
        await pilot.pause()
        assert table.rendered == [] and table.drawn == []

        records[1], records[2] = ("pod-02", 99), ("pod-01", 99)  # two rows trade places
        sync(table, records, dirty=lambda record: record[0] in ("pod-01", "pod-02"))
        await pilot.pause()
        assert sorted(table.rendered) == ["pod-01", "pod-02"] and sorted(table.drawn) == [2, 3]


async def test_the_cursor_stays_on_its_row_and_a_click_on_it_selects():
    app = TableApp()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(CountingTable)
        table.focus()
        sync(table, [("a", 3), ("b", 2), ("c", 1)])
        await pilot.press("down")
        assert table.selected_id == "b"
        sync(table, [("c", 9), ("a", 3), ("b", 2)])  # c overtook both
        assert table.row_ids == ["c", "a", "b"] and table.selected_id == "b" and table.cursor_row == 2
        sync(table, [("c", 9), ("a", 3)])  # b left: the cursor stays in the table
        assert table.selected_id == "a"
        await pilot.click(CountingTable, offset=(5, 2))  # line 2 is the second row, under the cursor
        assert app.selected == ["a"]


async def test_table_cells_are_drawn_literally():
    app = TableApp()
    async with app.run_test(size=(60, 6)) as pilot:
        table = app.query_one(CountingTable)
        sync(table, [("[b]pwned[/]\x1b[31m", 1)])
        await pilot.pause()
        line = table.render_line(1).text
        assert "[b]pwned[/]\\x1b[31m" in line and "\x1b" not in line


class LogApp(App):
    def compose(self) -> ComposeResult:
        yield LineLog(50, id="log")


async def test_the_log_follows_the_newest_line_and_holds_still_when_scrolled_up():
    from rich.text import Text

    app = LogApp()
    async with app.run_test(size=(60, 10)) as pilot:
        log = app.query_one(LineLog)
        log.write_lines(Text(f"line {i}") for i in range(40))
        await pilot.pause()
        assert log.scroll_y == log.max_scroll_y > 0
        assert log.render_line(log.size.height - 1).text.startswith("line 39")

        log.scroll_to(y=20, animate=False)
        await pilot.pause()
        top = log.render_line(0).text
        log.write_lines(Text(f"line {i}") for i in range(40, 55))  # 5 over the cap: the oldest 5 go
        await pilot.pause()
        assert len(log.lines) == 50 and log.lines[0].text.startswith("line 5")
        assert log.scroll_y == 15 and log.render_line(0).text == top  # the same lines in view
        log.write_lines([Text("[bold]not markup[/bold]")])
        assert log.lines[-1].text == "[bold]not markup[/bold]"
