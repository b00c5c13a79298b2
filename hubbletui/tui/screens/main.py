"""The main screen: drops by pod, aggregated flows (with the raw log under them) and, with a cluster history,
the cluster's changes, in tabs."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static, Tab, Tabs

from hubbletui.flows.store import Changes, RowKey
from hubbletui.tui.cells import clock_time
from hubbletui.tui.flowlines import (CHANGE_COLUMNS, POD_COLUMNS, ROW_COLUMNS, change_cells, log_line, pod_cells,
                                     row_cells)
from hubbletui.untrusted import printable
from hubbletui.diagnose.pod_status import deleted_at, pod_status
from hubbletui.diagnose.resolution import resolvable
from hubbletui.tui.widgets.line_log import LineLog
from hubbletui.tui.widgets.live_table import LiveTable
from hubbletui.tui.widgets.prompt import Prompt
from hubbletui.tui.screens.base import HubbleScreen

MAX_POD_ROWS = 100
MAX_CHANGE_ROWS = 500
MAX_FLOW_ROWS = 200
RATES_EVERY_S = 2.0  # per-minute rates move with time: every shown pod is redrawn this often
LOG_LINES = 2_000
LOG_PER_TICK = 40  # per redraw: at high rates the log shows a sample; the tables count everything
LOG_BACKFILL = 300


def change_id(entry) -> str:
    ns, name = entry.key
    return f"{entry.time!r}|{entry.kind}|{ns}|{name}"


class ViewTabs(Tabs):
    """The view tabs, whose underline jumps rather than slides: sliding repaints the bar some 18 times per
    switch, frames the event loop owes the flood and the next key."""

    def _highlight_active(self, animate: bool = True) -> None:
        super()._highlight_active(animate=False)


class MainScreen(HubbleScreen):
    BINDINGS = [
        Binding("enter", "drill", "Drill in"),
        Binding("1", "show_tab('drops')", "Drops"),
        Binding("2", "show_tab('flows')", "Flows"),
        Binding("3", "show_tab('changes')", "Changes"),
        Binding("p", "policy", "Policy"),
        Binding("l", "toggle_log", "Log", show=False),
        Binding("s", "toggle_sort", "Sort", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._cluster_generation: tuple[int, int] = (-1, -1)
        self._rates_drawn = 0.0
        self.flow_order = "count"
        self._log_shown = True  # `l` hides the raw log under the flows

    def body(self) -> ComposeResult:
        yield Static(id="notes")
        # A tab bar over sibling widgets rather than TabbedContent: switching views re-lays the screen out and
        # repaints what it covers, and every container level under a view is one more full-size layer to paint
        tabs = [Tab("Drops by pod", id="drops"), Tab("Flows", id="flows")]
        if self.hubble.timeline is not None:
            tabs.append(Tab("Changes", id="changes"))
        yield ViewTabs(*tabs, id="tabs")
        # the RESOLVED column only where there is a history to resolve by
        yield LiveTable(POD_COLUMNS if self.hubble.timeline is not None else POD_COLUMNS[:-1], id="pods")
        yield LiveTable(CHANGE_COLUMNS, id="changes", classes="changes-view")
        yield LiveTable(ROW_COLUMNS, id="rows", classes="flows-view")
        yield LineLog(LOG_LINES, id="log", classes="flows-view")
        yield Prompt(id="prompt")

    def on_mount(self) -> None:
        self.hubble.update_status()
        notes = self.hubble.notes
        widget = self.query_one("#notes", Static)
        widget.display = bool(notes)
        widget.update(Text("\n".join(notes), style="yellow"))
        self.query_one("#pods", LiveTable).focus()

    # ---------------------------------------------------------------------------------------------------
    # keeping the views current

    @property
    def active_tab(self) -> str:
        return self.query_one(Tabs).active or "drops"

    def refresh_views(self, changes: Changes | None, flows: list | None = None) -> None:
        """Bring the visible tab up to date; ``changes`` None means redraw everything."""
        if self.active_tab == "flows":
            self._refresh_rows(changes)
            self._log_flows(flows or [])
        elif self.active_tab == "changes":
            self._refresh_changes()
        else:
            self._refresh_pods(changes)

    def _refresh_pods(self, changes: Changes | None) -> None:
        app = self.hubble
        store, cluster = app.store, app.cluster
        now = store.latest_ns
        # a cluster's history moves with the flows' time: a change passed redraws the pods' status
        timeline = app.timeline
        generation = (cluster.generation if cluster is not None else 0,
                      timeline.position(now / 1e9) if timeline is not None else 0)
        full = changes is None or generation != self._cluster_generation
        if not full and not (changes.pods or changes.removed_pods or changes.flows):
            return
        self._cluster_generation = generation
        where = None if app.query.is_empty else app.query.match_pod
        table = self.query_one("#pods", LiveTable)
        pods = store.ranked_pods(MAX_POD_ROWS, where)
        state = app.cluster_now()

        def cells(pod):
            status = pod_status(state, pod.namespace, pod.pod)
            gone = deleted_at(timeline, pod.namespace, pod.pod, now) if status is None and timeline else None
            out = pod_cells(pod, now, status, cluster is not None, gone, self._resolved(pod))
            return out if timeline is not None else out[:-1]

        now_s = app.clock()
        if full or now_s - self._rates_drawn >= RATES_EVERY_S:
            self._rates_drawn = now_s
            dirty = lambda pod: True  # noqa: E731
        else:
            dirty = lambda pod: pod.ref in changes.pods  # noqa: E731
        table.sync([(p.ref, p) for p in pods], cells, dirty)

    def _resolved(self, pod) -> tuple[int, int, int] | None:
        loop, rows = self.hubble.loop, self.hubble.store.rows
        if loop is None:
            return None
        # only drops a policy change can end count: a full conntrack table is not resolved by a policy
        found = [loop.resolved(key) for key in pod.rows if key in rows and resolvable(rows[key])]
        times = [a.change.time for a in found if a is not None]
        return (len(times), len(found), int(max(times) * 1e9)) if times else None

    def _refresh_changes(self) -> None:
        """The cluster's changes up to the newest flow's time, newest first, with the drops each touched."""
        app = self.hubble
        timeline, loop = app.timeline, app.loop
        if timeline is None:
            return
        now = app.store.latest_ns / 1e9 if app.store.latest_ns else float("inf")
        entries = [e for e in timeline.entries() if e.time <= now][-MAX_CHANGE_ROWS:]
        table = self.query_one("#changes", LiveTable)

        def cells(entry):
            resolved, started = loop.touched_by(entry.time, entry.kind, entry.key) if loop else ([], [])
            return change_cells(entry, resolved, started)

        table.sync([(change_id(e), e) for e in reversed(entries)], cells, lambda entry: True)

    def _refresh_rows(self, changes: Changes | None) -> None:
        app = self.hubble
        if changes is not None and not (changes.rows or changes.removed_rows):
            return
        where = None if app.query.is_empty else app.query.match_row
        store = app.store
        table = self.query_one("#rows", LiveTable)
        rows = store.top_rows(MAX_FLOW_ROWS, where, self.flow_order)
        dirty = (lambda row: True) if changes is None else (lambda row: row.key in changes.rows)
        table.sync([(r.key.as_id(), r) for r in rows], row_cells, dirty)

    def _log_flows(self, flows: list) -> None:
        log = self.query_one("#log", LineLog)
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
        log.write_lines(lines)

    def backfill_log(self) -> None:
        log = self.query_one("#log", LineLog)
        log.clear()
        query = self.hubble.query
        where = None if query.is_empty else (lambda f: query.match_flow(f, self.hubble.is_refused))
        flows = self.hubble.store.recent_flows(LOG_BACKFILL, where)
        log.write_lines(log_line(flow, clock_time(flow.time_ns)) for flow in flows)

    # ---------------------------------------------------------------------------------------------------
    # actions

    def focus_table(self) -> None:
        tables = {"flows": "#rows", "changes": "#changes"}
        self.query_one(tables.get(self.active_tab, "#pods"), LiveTable).focus()

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        flows = event.tab.id == "flows"
        self.query_one("#pods").display = event.tab.id == "drops"
        self.query_one("#changes").display = event.tab.id == "changes"
        self.query_one("#rows").display = flows
        self.query_one("#log").display = flows and self._log_shown
        self.focus_table()
        self.hubble.redraw()

    def shows_binding(self, binding) -> bool:
        return binding.action != "show_tab('changes')" or self.hubble.timeline is not None

    def action_show_tab(self, tab: str) -> None:
        if tab == "changes" and self.hubble.timeline is None:
            self.notify("no cluster history here: changes show with --input DIR (a bundle), the demo, or --live",
                        timeout=4, markup=False)
            return
        self.query_one(Tabs).active = tab

    def action_toggle_log(self) -> None:
        self._log_shown = not self._log_shown
        log = self.query_one("#log", LineLog)
        log.display = self._log_shown and self.active_tab == "flows"
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
        return self.query_one("#pods", LiveTable).selected_id

    def selected_row(self) -> RowKey | None:
        row_id = self.query_one("#rows", LiveTable).selected_id
        return RowKey.from_id(row_id) if row_id else None

    def action_drill(self) -> None:
        if self.active_tab == "changes":
            self._drill_change()
        elif self.active_tab == "flows":
            key = self.selected_row()
            if key is not None:
                self.hubble.open_row(key)
        else:
            ref = self.selected_pod()
            if ref is not None:
                self.hubble.open_pod(ref)

    def _drill_change(self) -> None:
        """The drops a change resolved or started, in the drop detail."""
        app, selected = self.hubble, self.query_one("#changes", LiveTable).selected_id
        entry = next((e for e in app.timeline.entries() if change_id(e) == selected), None) if selected else None
        if entry is None or app.loop is None:
            return
        resolved, started = app.loop.touched_by(entry.time, entry.kind, entry.key)
        if not resolved and not started:
            self.notify("no drop row is attributed to this change", timeout=3, markup=False)
            return
        app.open_rows(printable(entry.describe()), resolved + started)

    def on_live_table_selected(self, event: LiveTable.Selected) -> None:
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
