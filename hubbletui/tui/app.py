"""The Textual app: built by `create_app` from its collaborators (flow source, cluster and policy engine or
None, clock), so the CLI, the demo and tests each pass their own.

Flows never touch a widget one by one: a worker thread fills a bounded buffer (feed.py) and a 10 Hz timer
drains it into the FlowStore (a slice at a time, so keys are answered in between), then redraws what changed
inside one `batch_update`.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App
from textual.binding import Binding

from hubbletui.cluster.model import ClusterState
from hubbletui.cluster.timeline import Timeline
from hubbletui.diagnose.resolution import LoopTracker, attribute_rows
from hubbletui.policy.as_of import EngineAt
from hubbletui.flows.model import Flow
from hubbletui.flows.query_text import QueryError, TextQuery, parse_query
from hubbletui.flows.conn import orient
from hubbletui.flows.store import FlowStore, Refusal, RowKey
from hubbletui.diagnose.mesh_refusals import REFUSED, MeshRefusalDetector
from hubbletui.untrusted import printable
from hubbletui.sources.base import FlowSource
from hubbletui.tui.commands import CommandError, HubbleCommands, execute
from hubbletui.tui.feed import FeedBuffer, Reports, run_source
from hubbletui.tui.screens.help import HelpScreen
from hubbletui.tui.screens.main import MainScreen
from hubbletui.tui.widgets.prompt import COMMAND, FILTER, Prompt
from hubbletui.tui.screens.base import HubbleScreen
from hubbletui.tui.widgets.status_bar import StatusInfo

if TYPE_CHECKING:  # annotations only: these are imported where first needed, not at start-up
    from hubbletui.diagnose.mesh_refusals import MeshRefusal
    from hubbletui.flows.model import Endpoint
    from hubbletui.policy.graph import PolicyGraph
    from hubbletui.suggest.model import GroupFixes, Suggestion

TICK_S = 0.1
LOOP_EVERY_S = 1.0  # how often rows are checked for a change that resolved them (with a cluster history)
SWITCH_INTERVAL_S = 0.0005
GC_YOUNG_THRESHOLD = 5_000  # allocations between young collections (CPython's default is 700)
VIEWS_EVERY_S = 0.25  # tables are redrawn at most this often; flows are taken in every tick ...
VIEWS_EVERY_BUSY_S = 0.5  # ... and less often in a flood: ranking the store's rows and pods takes 10-15 ms
BUSY_FLOWS_PER_S = 2_000  # at 20,000 flows/s, and keys must stay quick
LOG_KEEP = 200  # flows kept for the raw log between redraws (it shows a sample of them)
MAX_EVENTS_PER_TICK = 5_000  # 50k/s of headroom; beyond that the buffer drops the oldest and says so
STORE_SLICE = 250  # events added to the store between two looks at the event loop (a few ms)
PICKING = "pick: mark fixes with m in a drop's detail; when you quit (q), the marked ones go to stdout"
FLOWS_ONLY = ("flows only: no cluster given, so pod status, explanations, fixes and mesh refusals are missing "
              "(add --cluster PATH or --live)")


@dataclass
class Collaborators:
    source: FlowSource
    cluster: ClusterState | None = None
    engine: PolicyEngine | None = None  # explains, traces and suggests when there is a cluster
    detector: MeshRefusalDetector | None = None  # finds mesh refusals when there is a cluster
    clock: Callable[[], float] = time.time  # the wall clock: flow rates and "last seen"
    ticks: Callable[[], float] = time.monotonic  # paces redraws; tests step it
    notes: tuple[str, ...] = ()  # what is missing and why, shown on the main screen
    out_dir: Path = field(default_factory=Path.cwd)  # where `w` writes fixes
    reports: Reports | None = None  # what the source reported (malformed lines), shown as notifications
    timeline: Timeline | None = None  # a bundle's cluster history: drops are judged by the state at their time


class HubbleApp(App):
    CSS_PATH = "hubbletui.tcss"
    TITLE = "hubbletui"
    COMMANDS = App.COMMANDS | {HubbleCommands}
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("slash", "prompt('filter')", "Filter"),
        Binding("colon", "prompt('command')", "Command"),
        Binding("space", "toggle_follow", "Pause/Follow"),
    ]

    def __init__(self, collab: Collaborators, **kwargs):
        super().__init__(**kwargs)
        self.collab = collab
        self.source = collab.source
        self.cluster = collab.cluster
        self.engine = collab.engine
        self.detector = collab.detector
        self._refusals_seen = 0
        self.reports = collab.reports
        self._pending_flows: list[Flow] = []
        self._views_drawn = 0.0
        self._full_redraw = False
        self._graph: PolicyGraph | None = None
        self._graph_lock = threading.Lock()
        self._reports_seen = 0
        self.clock = collab.clock
        self.ticks = collab.ticks
        self.notes = collab.notes
        self.store = FlowStore(clock=collab.clock)
        self.feed = FeedBuffer()
        self.following = True
        self.unseen = 0
        self.filter_text = ""
        self.scope_ns = ""
        self.scope_pod = ""
        self.query = TextQuery()
        self._filter_before = ""
        self.marked: dict[str, tuple[GroupFixes, Suggestion]] = {}  # pick: suggestion id -> its fix
        self.sub_title = self.source.describe()
        self.timeline = collab.timeline
        self.loop = LoopTracker(collab.timeline) if collab.timeline is not None and collab.engine is not None \
            else None
        self._loop_busy = False

    # ---------------------------------------------------------------------------------------------------
    # life cycle

    def on_mount(self) -> None:
        self.push_screen(MainScreen())
        worker = self.run_worker(lambda: run_source(self.source, self.feed, lambda: worker.is_cancelled,
                                                    self.detector),
                                 name="source", group="source", thread=True, exclusive=True, exit_on_error=False)
        self.set_interval(TICK_S, self.tick, name="drain")
        if self.loop is not None:
            self.set_interval(LOOP_EVERY_S, self.check_loop, name="loop")

    async def tick(self) -> None:
        if not self.screen_stack or not self.is_running:
            return  # shutting down
        events = self.feed.drain(MAX_EVENTS_PER_TICK)
        added = await self._take_in(events)
        if not self.screen_stack or not self.is_running:
            return
        with self.batch_update():
            if self.feed.refusals_seen != self._refusals_seen:
                self._refusals_seen = self.feed.refusals_seen
                self.store.mark_refusals(refusal_marks(self.feed.refusals))
            if not self.following:
                self.store.take_changes()
                self.unseen += added
            elif isinstance(self.screen, MainScreen):
                self._pending_flows.extend(e for e in events if isinstance(e, Flow))
                del self._pending_flows[:-LOG_KEEP]
                now = self.ticks()
                if self._full_redraw:
                    self._full_redraw = False
                    self._views_drawn = now
                    self.store.take_changes()
                    self._pending_flows = []
                    self.screen.refresh_views(None)
                    if self.screen.active_tab == "flows":
                        self.screen.backfill_log()
                elif now - self._views_drawn >= self._views_interval():
                    self._views_drawn = now
                    changes = self.store.take_changes()
                    if changes:
                        self.screen.refresh_views(changes, self._pending_flows)
                    self._pending_flows = []
            self.update_status()
        if self.reports is not None and self.reports.count != self._reports_seen:
            new = self.reports.count - self._reports_seen
            self._reports_seen = self.reports.count
            more = f" (+{new - 1} more)" if new > 1 else ""
            self.notify(printable(self.reports.latest()) + more, severity="warning", timeout=6,
                        markup=False)

    async def _take_in(self, events: list) -> int:
        """Add ``events`` to the store a slice at a time, letting the event loop run between slices: a key
        pressed meanwhile is answered, and its frame drawn, after one slice rather than after the whole tick."""
        added = 0
        for start in range(0, len(events), STORE_SLICE):
            if start:
                await asyncio.sleep(0)
            added += self.store.add_events(events[start:start + STORE_SLICE], self.clock())
        return added

    def _views_interval(self) -> float:
        busy = self.store.flow_rate.rate(self.clock()) >= BUSY_FLOWS_PER_S
        return VIEWS_EVERY_BUSY_S if busy else VIEWS_EVERY_S

    def check_loop(self) -> None:
        """Attribute the rows a change may have resolved (or started), one pass at a time, off the UI thread."""
        if self._loop_busy or not self.is_running:
            return
        due = self.loop.due(self.store)
        if not due:
            return
        self._loop_busy = True
        engine, timeline = self.engine, self.timeline

        def work() -> None:
            found: dict = {}
            try:
                found = attribute_rows(due, engine, timeline)
            finally:  # the next pass may start only once this one is over, even if it failed
                self.call_from_thread(self._loop_done, found)

        self.run_worker(work, name="loop", group="loop", thread=True, exit_on_error=False)

    def _loop_done(self, found: dict) -> None:
        self._loop_busy = False
        if found:
            self.loop.update(found)
            self.redraw()

    def cluster_now(self):
        """The cluster as the newest flow saw it: with a history, later changes (a replay's future) put back."""
        if self.timeline is None or not self.store.latest_ns:
            return self.cluster
        return self.timeline.state_at(self.store.latest_ns / 1e9)

    def status_info(self) -> StatusInfo:
        store, now = self.store, self.clock()
        unavailable = set(store.stats.unavailable_nodes) | set(getattr(self.source.stats, "unavailable_nodes", ()))
        return StatusInfo(
            source=self.source.describe(), state=self.feed.state, flows_per_s=store.flow_rate.rate(now),
            drops_per_s=store.drop_rate.rate(now),
            lost_events=max(store.stats.lost_events, getattr(self.source.stats, "lost_events", 0)),
            buffer_dropped=self.feed.dropped, unavailable_nodes=tuple(sorted(unavailable)),
            following=self.following, unseen=self.unseen, flows_total=store.stats.flows, scope=self.query.source)

    def update_status(self) -> None:
        bar = self.screen.status_bar if isinstance(self.screen, HubbleScreen) else None
        if bar is not None:
            bar.show(self.status_info())

    # ---------------------------------------------------------------------------------------------------
    # following, filtering, views

    def set_following(self, following: bool) -> None:
        self.following = following
        if following:
            self.unseen = 0
            self.redraw()
        self.update_status()

    def action_toggle_follow(self) -> None:
        self.set_following(not self.following)

    def redraw(self) -> None:
        """Redraw the main views from the store at the next tick: a key is answered first (its own change
        shows at once), the tables follow within a tick."""
        self._full_redraw = True

    @property
    def main_screen(self) -> MainScreen | None:
        return next((s for s in self.screen_stack if isinstance(s, MainScreen)), None)

    def _apply_query(self) -> None:
        parts = [f"ns:{self.scope_ns}" if self.scope_ns else "", f"pod:{self.scope_pod}" if self.scope_pod else "",
                 self.filter_text]
        self.query = parse_query(" ".join(p for p in parts if p))
        self.redraw()
        self.update_status()

    def set_filter(self, text: str) -> None:
        """Filter every view; raises QueryError (and keeps the old filter) when ``text`` is not understood."""
        parse_query(text)
        self.filter_text = text.strip()
        self._apply_query()

    def set_scope(self, namespace: str | None = None, pod: str | None = None) -> None:
        if namespace is not None:
            self.scope_ns = namespace
        if pod is not None:
            self.scope_pod = pod
        self._apply_query()

    def show_tab(self, tab: str) -> None:
        while not isinstance(self.screen, MainScreen) and len(self.screen_stack) > 1:
            self.pop_screen()
        main = self.main_screen
        if main is not None:
            main.action_show_tab(tab)

    def action_prompt(self, mode: str) -> None:
        if not isinstance(self.screen, MainScreen):
            self.notify("/ and : work on the main screen (esc to go back)", timeout=3, markup=False)
            return
        prompt = self.screen.query_one(Prompt)
        self._filter_before = self.filter_text
        prompt.open(mode, self.filter_text if mode == FILTER else "")

    def on_prompt_typed(self, message: Prompt.Typed) -> None:
        if message.mode == FILTER:
            try:
                self.set_filter(message.value)
            except QueryError:
                pass  # half-typed: keep the last filter that parsed until enter

    def on_prompt_done(self, message: Prompt.Done) -> None:
        self.call_after_refresh(self._focus_table)
        if message.mode == FILTER:
            before = self._filter_before
            try:
                self.set_filter(before if message.value is None else message.value)
            except QueryError as exc:
                self.set_filter(before)
                self.notify(printable(str(exc)), severity="error", timeout=5, markup=False)
        elif message.mode == COMMAND and message.value:
            try:
                execute(self, message.value)
            except (CommandError, QueryError) as exc:
                self.notify(printable(str(exc)), severity="error", timeout=5, markup=False)

    def _focus_table(self) -> None:
        if isinstance(self.screen, MainScreen):
            self.screen.focus_table()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # ---------------------------------------------------------------------------------------------------
    # drilling in

    def open_pod(self, ref: str) -> None:
        from hubbletui.tui.screens.detail import DropDetailScreen

        pod = self.store.pods.get(ref)
        if pod is None:
            self.notify(f"no drops recorded for {printable(ref)}", severity="warning", timeout=3, markup=False)
            return
        self.push_screen(DropDetailScreen(title=ref, keys=pod.top_rows()))

    def open_rows(self, title: str, keys: list[RowKey]) -> None:
        from hubbletui.tui.screens.detail import DropDetailScreen

        keys = [k for k in keys if k in self.store.rows]
        if keys:
            self.push_screen(DropDetailScreen(title=title, keys=keys))

    def open_row(self, key: RowKey) -> None:
        from hubbletui.tui.screens.detail import DropDetailScreen

        self.push_screen(DropDetailScreen(title=f"{key.src} → {key.dst} {key.port.text}", keys=[key]))

    def open_policy(self, ref: str, endpoint: Endpoint | None = None) -> None:
        from hubbletui.tui.screens.policy import PolicyScreen

        pod = self.store.pods.get(ref)
        if endpoint is None and pod is not None:
            endpoint = pod.endpoint
        self.push_screen(PolicyScreen(ref, endpoint))

    def policy_graph(self) -> PolicyGraph:
        """The policy graph (networkx), built on first use (in a worker thread) and kept; it follows a live
        cluster's changes."""
        with self._graph_lock:
            if self._graph is None:
                from hubbletui.policy.graph import PolicyGraph

                self._graph = PolicyGraph(self.engine, follow=getattr(self.cluster, "stop", None) is not None)
            return self._graph

    def is_refused(self, flow: Flow) -> bool:
        return orient(flow).conn in self.store.refusals

    # ---------------------------------------------------------------------------------------------------
    # pick

    def picked(self) -> list[tuple[GroupFixes, Suggestion]]:
        return list(self.marked.values())

    async def action_quit(self) -> None:
        self.exit(self.picked())


def prepare_process() -> None:
    """Call once before `run()` in a process that exists for the TUI.

    What exists by then (modules, the cluster state, the policy engine) lives as long as the app: frozen, the
    garbage collector's full passes need not walk it again and again while flows stream (a full pass over a
    large state stalls the UI). A flood allocates fast: at the default threshold (700) young collections run
    every few milliseconds, so whatever lives a second (buffered events, tracked connections, cells) reaches
    the oldest generation, whose full pass (80-110 ms at 20,000 flows/s) then ran about once a second. A
    larger first threshold lets more die young; much larger makes each young pass long (20-40 ms at 20,000).
    And the source's thread competes with the UI's for the GIL: a shorter switch interval (5 ms by default)
    bounds how long a key waits for it.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def refusal_marks(found: list[MeshRefusal]) -> list[Refusal]:
    """The detector's confirmed refusals (policy and packets agree) as store marks. One the policy alone
    predicts is not counted as a drop; the drop detail of that connection shows the Istio layer denying it."""
    return [Refusal(r.conn, r.summary, tuple(r.evidence_lines()), r.layer, r) for r in found
            if r.status == REFUSED]


def create_app(source: FlowSource, *, cluster: ClusterState | None = None, engine: PolicyEngine | None = None,
               clock: Callable[[], float] = time.time, ticks: Callable[[], float] = time.monotonic,
               notes: tuple[str, ...] | list[str] = (),
               out_dir: Path | None = None, pick: bool = False, reports: Reports | None = None,
               timeline: Timeline | None = None, **app_kwargs) -> HubbleApp:
    notes = tuple(notes)
    if cluster is None and not notes:
        notes = (FLOWS_ONLY,)
    if pick:
        notes += (PICKING,)
    engine_at = EngineAt(engine, timeline).at if engine is not None and timeline is not None else None
    detector = MeshRefusalDetector(engine, engine_at=engine_at) if engine is not None else None
    collab = Collaborators(source=source, cluster=cluster, engine=engine, detector=detector, clock=clock,
                           ticks=ticks, notes=notes, out_dir=out_dir or Path.cwd(), reports=reports,
                           timeline=timeline)
    return HubbleApp(collab, **app_kwargs)
