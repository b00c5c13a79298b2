"""The main screen: drops by pod and aggregated flows (with the raw log under them), in two tabs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, RichLog, Static, TabbedContent, TabPane

from hubbletui.flows.store import Changes, RowKey
from hubbletui.tui.cells import clock_time
from hubbletui.tui.flowlines import POD_COLUMNS, ROW_COLUMNS, log_line, pod_cells, row_cells
from hubbletui.tui.pod_status import pod_status
from hubbletui.tui.widgets.key_bar import KeyBar
from hubbletui.tui.widgets.keyed_table import KeyedTable
from hubbletui.tui.widgets.prompt import Prompt
from hubbletui.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from hubbletui.tui.app import HubbleApp

MAX_POD_ROWS = 100
MAX_FLOW_ROWS = 200
RATES_EVERY_S = 2.0  # per-minute rates move with time: every shown pod is redrawn this often
LOG_LINES = 2_000
LOG_PER_TICK = 40  # per redraw: at high rates the log shows a sample; the tables count everything
LOG_BACKFILL = 300
HEADER_ICON = "◆"  # Textual's default icon is not in Fira Code


class MainScreen(Screen):
    BINDINGS = [
        Binding("enter", "drill", "Drill in"),
        Binding("1", "show_tab('drops')", "Drops"),
        Binding("2", "show_tab('flows')", "Flows"),
        Binding("p", "policy", "Policy"),
        Binding("l", "toggle_log", "Log", show=False),
        Binding("s", "toggle_sort", "Sort", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._cluster_generation = -1
        self._rates_drawn = 0.0
        self.flow_order = "count"

    @property
    def hubble(self) -> HubbleApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header(icon=HEADER_ICON)
        yield Static(id="notes")
        with TabbedContent(initial="drops"):
            with TabPane("Drops by pod", id="drops"):
                yield KeyedTable(POD_COLUMNS, id="pods")
            with TabPane("Flows", id="flows"):
                with Vertical():
                    yield KeyedTable(ROW_COLUMNS, id="rows")
                    yield RichLog(id="log", max_lines=LOG_LINES, markup=False, highlight=False, wrap=False)
        yield Prompt(id="prompt")
        yield StatusBar(id="status")
        yield KeyBar()

    def on_mount(self) -> None:
        self.status_bar = self.query_one(StatusBar)
        self.hubble.update_status()
        notes = self.hubble.notes
        widget = self.query_one("#notes", Static)
        widget.display = bool(notes)
        widget.update(Text("\n".join(notes), style="yellow"))
        self.query_one("#pods", KeyedTable).focus()

    # ---------------------------------------------------------------------------------------------------
    # keeping the views current

    @property
    def active_tab(self) -> str:
        return self.query_one(TabbedContent).active

    def refresh_views(self, changes: Changes | None, flows: list | None = None) -> None:
        """Bring the visible tab up to date; ``changes`` None means redraw everything."""
        if self.active_tab == "flows":
            self._refresh_rows(changes)
            self._log_flows(flows or [])
        else:
            self._refresh_pods(changes)

    def _refresh_pods(self, changes: Changes | None) -> None:
        app = self.hubble
        store, cluster = app.store, app.cluster
        generation = cluster.generation if cluster is not None else 0
        full = changes is None or generation != self._cluster_generation
        if not full and not (changes.pods or changes.removed_pods or changes.flows):
            return
        self._cluster_generation = generation
        now = store.latest_ns
        where = None if app.query.is_empty else app.query.match_pod
        table = self.query_one("#pods", KeyedTable)
        pods = _with_lingering(store.ranked_pods(MAX_POD_ROWS, where), lambda p: p.ref, table,
                               store.pods.get, where, store.pod_rank(), MAX_POD_ROWS)

        def cells(pod):
            return pod_cells(pod, now, pod_status(cluster, pod.namespace, pod.pod), cluster is not None)

        now_s = app.clock()
        if full or now_s - self._rates_drawn >= RATES_EVERY_S:
            self._rates_drawn = now_s
            dirty = lambda pod: True  # noqa: E731
        else:
            dirty = lambda pod: pod.ref in changes.pods  # noqa: E731
        table.sync([(p.ref, p) for p in pods], cells, dirty)

    def _refresh_rows(self, changes: Changes | None) -> None:
        app = self.hubble
        if changes is not None and not (changes.rows or changes.removed_rows):
            return
        where = None if app.query.is_empty else app.query.match_row
        store = app.store
        table = self.query_one("#rows", KeyedTable)
        rows = _with_lingering(store.top_rows(MAX_FLOW_ROWS, where, self.flow_order), lambda r: r.key.as_id(), table,
                               lambda row_id: store.rows.get(RowKey.from_id(row_id)), where,
                               store.row_rank(self.flow_order), MAX_FLOW_ROWS)
        dirty = (lambda row: True) if changes is None else (lambda row: row.key in changes.rows)
        table.sync([(r.key.as_id(), r) for r in rows], row_cells, dirty)

    def _log_flows(self, flows: list) -> None:
        log = self.query_one("#log", RichLog)
        if not log.display or not flows:
            return
        query = self.hubble.query
        if not query.is_empty:
            flows = [f for f in flows if query.match_flow(f, self.hubble.is_refused)]
        lines = []
        skipped = len(flows) - LOG_PER_TICK
        if skipped > 0:
            lines.append(Text(f"… {skipped:,} flows not shown (the tables count them all)", style="dim italic"))
            flows = flows[-LOG_PER_TICK:]
        lines += [log_line(flow, clock_time(flow.time_ns)) for flow in flows]
        _write_lines(log, lines)

    def backfill_log(self) -> None:
        log = self.query_one("#log", RichLog)
        log.clear()
        query = self.hubble.query
        where = None if query.is_empty else (lambda f: query.match_flow(f, self.hubble.is_refused))
        flows = self.hubble.store.recent_flows(LOG_BACKFILL, where)
        _write_lines(log, [log_line(flow, clock_time(flow.time_ns)) for flow in flows])

    def reset_tables(self) -> None:
        self.query_one("#pods", KeyedTable).reset()
        self.query_one("#rows", KeyedTable).reset()

    # ---------------------------------------------------------------------------------------------------
    # actions

    def focus_table(self) -> None:
        self.query_one("#rows" if self.active_tab == "flows" else "#pods", KeyedTable).focus()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.focus_table()
        self.hubble.redraw()

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_toggle_log(self) -> None:
        log = self.query_one("#log", RichLog)
        log.display = not log.display
        if log.display:
            self.hubble.redraw()

    def action_toggle_sort(self) -> None:
        self.flow_order = "last" if self.flow_order == "count" else "count"
        order = "last seen" if self.flow_order == "last" else "count"
        self.notify(f"flows sorted by {order}", timeout=2, markup=False)
        self.hubble.redraw()

    def action_clear_filter(self) -> None:
        self.hubble.set_filter("")

    def selected_pod(self) -> str | None:
        return self.query_one("#pods", KeyedTable).selected_id

    def selected_row(self) -> RowKey | None:
        row_id = self.query_one("#rows", KeyedTable).selected_id
        return RowKey.from_id(row_id) if row_id else None

    def action_drill(self) -> None:
        if self.active_tab == "flows":
            key = self.selected_row()
            if key is not None:
                self.hubble.open_row(key)
        else:
            ref = self.selected_pod()
            if ref is not None:
                self.hubble.open_pod(ref)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_drill()

    def action_policy(self) -> None:
        endpoint = None
        if self.active_tab == "flows":
            key = self.selected_row()
            row = self.hubble.store.rows.get(key) if key else None
            endpoint = row.src_ep if row is not None and row.src_ep.pod else None
            ref = f"{endpoint.namespace}/{endpoint.pod}" if endpoint is not None else None
        else:
            ref = self.selected_pod()
        if ref is None:
            self.notify("select a pod first", severity="warning", timeout=3, markup=False)
            return
        self.hubble.open_policy(ref, endpoint)


def _write_lines(log: RichLog, lines: list[Text]) -> None:
    """One write for many lines (each write re-lays the screen out), at their own width: RichLog would measure
    them against the console and cut them; the log scrolls sideways instead."""
    if lines:
        block = Text("\n", no_wrap=True, end="").join(lines)
        log.write(block, width=max(line.cell_len for line in lines))


def _with_lingering(top: list, row_id, table: KeyedTable, lookup, where, rank, limit: int) -> list:
    """``top`` plus the rows the table shows that fell just out of it, at the bottom in rank order, until the
    table would be a quarter over ``limit``. At high rates rows near the cut-off swap places all the time, and
    every row that comes or goes makes Textual lay the whole screen out again."""
    in_top = {row_id(record) for record in top}
    lingering = []
    for shown in table.shown_ids:
        if shown not in in_top:
            record = lookup(shown)
            if record is not None and (where is None or where(record)):
                lingering.append(record)
    if not lingering or len(top) + len(lingering) > limit + limit // 4:
        return top
    return top + sorted(lingering, key=rank, reverse=True)
