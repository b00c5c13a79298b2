"""The TUI driven with Pilot on flows pushed through the real FlowSource interface: ranking, status bar,
pause/follow, filter, command mode, help, palette, drill-in (without and with a cluster), untrusted text."""

from __future__ import annotations

import time

from textual import events
from textual.command import CommandPalette

from hubbletui.cluster.model import ClusterState
from hubbletui.flows.model import LostEvents, NodeStatus
from hubbletui.policy.engine import PolicyEngine
from hubbletui.sources.base import RETRYING, SourceState
from hubbletui.diagnose.analysis import NO_CLUSTER
from hubbletui.tui.app import FLOWS_ONLY, HubbleApp, create_app
from hubbletui.tui.feed import FeedBuffer
from hubbletui.tui.keys import KEYS
from hubbletui.tui.screens.detail import DropDetailScreen
from hubbletui.tui.screens.help import HelpScreen
from hubbletui.tui.screens.main import MainScreen
from hubbletui.tui.screens.policy import PolicyScreen
from hubbletui.tui.widgets.live_table import LiveTable
from hubbletui.tui.widgets.status_bar import StatusBar
from tui_support import EXPORTER, T0, PushSource, mkflow, prompt, settle, small_cluster, story_flows

SIZE = (160, 40)


def pod_ids(app) -> list[str]:
    table = app.screen.query_one("#pods", LiveTable)
    return table.row_ids


def status_text(app) -> str:
    return str(app.screen.query_one(StatusBar).render())


async def test_drops_are_ranked_and_the_status_bar_counts():
    source = PushSource()
    app = create_app(source, clock=lambda: 1000.0)
    async with app.run_test(size=SIZE) as pilot:
        source.push(story_flows())
        source.push([LostEvents(T0, "HUBBLE_RING_BUFFER", 5, 0, "worker-1", None),
                     NodeStatus(T0, "NODE_UNAVAILABLE", ("worker-2",), "", "", None)])
        await settle(pilot, app, 18)
        assert pod_ids(app) == [EXPORTER, "monitoring/prometheus-0"]
        table = app.screen.query_one("#pods", LiveTable)
        assert table.get_cell(EXPORTER, "drops").value == 10
        assert table.get_cell(EXPORTER, "peer").plain.strip() == "→ database/fdb-0"
        assert table.get_cell(EXPORTER, "status").plain.strip() == "no cluster"
        status = status_text(app)
        for part in ("pushed flows", "streaming", "18 flows", "lost 5", "nodes unavailable: worker-2", "FOLLOWING"):
            assert part in status
        assert FLOWS_ONLY in str(app.screen.query_one("#notes").render())
        app.feed.dropped = 1234  # as the worker thread counts them when the UI falls behind
        source.push([SourceState(RETRYING, "retrying in 1.5 s: UNAVAILABLE: connection refused")])
        await pilot.pause(0.3)
        assert "buffer dropped 1,234" in status_text(app)
        assert "pushed flows retrying in 1.5 s: UNAVAILABLE: connection refused" in status_text(app)


async def test_pause_keeps_counting_and_follow_catches_up():
    source = PushSource()
    app = create_app(source, clock=lambda: 1000.0)
    async with app.run_test(size=SIZE) as pilot:
        source.push(story_flows(exporter_drops=4))
        await settle(pilot, app, 12)
        table = app.screen.query_one("#pods", LiveTable)
        await pilot.press("space")
        source.push([mkflow(t=50 + i) for i in range(6)])
        await settle(pilot, app, 18)
        assert table.get_cell(EXPORTER, "drops").value == 4  # the view is frozen ...
        assert app.store.pods[EXPORTER].total == 10  # ... the store is not
        assert "PAUSED +6 new" in status_text(app)
        await pilot.press("space")
        await pilot.pause(0.2)
        assert table.get_cell(EXPORTER, "drops").value == 10
        assert "FOLLOWING" in status_text(app)


async def test_filter_by_namespace_verdict_and_text():
    source = PushSource()
    app = create_app(source, clock=lambda: 1000.0)
    async with app.run_test(size=SIZE) as pilot:
        source.push(story_flows())
        await settle(pilot, app, 18)
        await pilot.press("slash", *"prom", "enter")  # typed: the filter applies as it is typed
        await pilot.pause(0.1)
        assert pod_ids(app) == ["monitoring/prometheus-0"]
        await prompt(pilot, "slash", "ns:monitoring")
        assert pod_ids(app) == ["monitoring/prometheus-0"]
        assert "filter ns:monitoring" in status_text(app)
        await pilot.press("2")
        await pilot.pause(0.2)
        rows = app.screen.query_one("#rows", LiveTable)
        assert rows.row_count == 1
        log = app.screen.query_one("#log")  # the raw log under the table, filtered alike
        assert len(log.lines) == 3 and all("prometheus-0" in line.text for line in log.lines)
        assert "DROPPED POLICY_DENIED" in log.lines[0].text
        await prompt(pilot, "slash", "verdict:forwarded cart")
        assert [app.store.rows[k].key.dst for k in app.store.rows if app.query.match_row(app.store.rows[k])] == [
            "shop/cart"]
        assert rows.row_count == 1
        await prompt(pilot, "slash", "verdict:sideways")  # not understood: said, and the filter before stays
        assert app.filter_text == "verdict:forwarded cart"
        assert any("verdict:sideways" in str(n.message) for n in app._notifications)
        await pilot.press("escape")  # on the main screen: clears the filter
        await pilot.pause(0.2)
        assert app.query.is_empty and rows.row_count == 3
        await pilot.press("l")
        assert not log.display


async def test_command_mode_scopes_switches_views_and_quits():
    source = PushSource()
    app = create_app(source, clock=lambda: 1000.0)
    async with app.run_test(size=SIZE) as pilot:
        source.push(story_flows())
        await settle(pilot, app, 18)
        await pilot.press("colon", *"ns shop", "enter")  # typed, as people do
        await pilot.pause(0.15)
        assert app.scope_ns == "shop" and pod_ids(app) == []
        await prompt(pilot, "colon", "ns monitoring")
        assert pod_ids(app) == ["monitoring/prometheus-0"]
        await prompt(pilot, "colon", "ns")
        await prompt(pilot, "colon", "pod exporter")
        assert app.scope_ns == "" and pod_ids(app) == [EXPORTER]
        await prompt(pilot, "colon", "flows")
        assert app.screen.active_tab == "flows"
        await prompt(pilot, "colon", "frobnicate")
        assert any("unknown command" in str(n.message) for n in app._notifications)
        await prompt(pilot, "colon", "q")
    assert app.return_value == []


async def test_help_lists_every_key_and_closes():
    app = create_app(PushSource(), clock=lambda: 1000.0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        shown = app.export_screenshot()
        for _, key, _ in KEYS:
            assert key.split(" ")[0] in shown
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_drill_in_without_a_cluster_says_what_is_missing():
    source = PushSource()
    app = create_app(source, clock=lambda: 1000.0)
    async with app.run_test(size=SIZE) as pilot:
        source.push(story_flows())
        await settle(pilot, app, 18)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, DropDetailScreen)
        text = str(app.screen.query_one("#explanation-text").render())
        assert "POLICY_DENIED" in text and NO_CLUSTER.split(":")[0] in text
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        await pilot.press("p")
        await pilot.pause(0.2)
        assert isinstance(app.screen, PolicyScreen)
        assert "no cluster" in str(app.screen.query_one("#policy-body").render())


async def test_drill_in_explains_per_layer_and_shows_pod_status():
    source = PushSource()
    state = small_cluster()
    app = create_app(source, cluster=state, engine=PolicyEngine(state), clock=lambda: 1000.0)
    async with app.run_test(size=SIZE) as pilot:
        source.push(story_flows())
        await settle(pilot, app, 18)
        table = app.screen.query_one("#pods", LiveTable)
        assert table.get_cell(EXPORTER, "status").plain.strip() == "CrashLoopBackOff 7 restarts"
        await pilot.press("enter")
        deadline = time.monotonic() + 5
        while not app.screen.analyses and time.monotonic() < deadline:
            await pilot.pause(0.05)
        await pilot.pause(0.1)
        text = str(app.screen.query_one("#explanation-text").render())
        assert "egress at database/fdb-exporter-5d9c8-abcde: denied (POLICY_DENIED)" in text
        assert "CiliumNetworkPolicy/database/default-deny" in text
        assert "lacks (subject): label fdb-client=true" in text
        await pilot.press("escape", "p")
        deadline = time.monotonic() + 5
        body = app.screen.query_one("#policy-body")
        while "egress:" not in str(body.render()) and time.monotonic() < deadline:
            await pilot.pause(0.05)
        view = str(body.render())
        assert "egress: isolated (default deny)" in view and "CiliumNetworkPolicy/database/default-deny" in view


async def test_palette_offers_views_namespaces_and_pods():
    source = PushSource()
    app = create_app(source, clock=lambda: 1000.0)
    async with app.run_test(size=SIZE) as pilot:
        source.push(story_flows())
        await settle(pilot, app, 18)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        assert isinstance(app.screen, CommandPalette)
        app.screen.query_one("Input").post_message(events.Paste("Drops of database"))
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, DropDetailScreen) and app.screen.title_text == EXPORTER


async def test_untrusted_text_is_shown_literally():
    evil_pod = "[bold red]pwned[/]\x1b[31m"
    source = PushSource()
    app = create_app(source, clock=lambda: 1000.0)
    async with app.run_test(size=SIZE) as pilot:
        source.push([mkflow(src=f"database/{evil_pod}", src_workload=None, t=i) for i in range(3)])
        await settle(pilot, app, 3)
        shown = app.export_screenshot()
        assert "[bold red]pwned[/]\\x1b[31m" in shown.replace("&#160;", " ")
        assert "\x1b" not in shown
        await pilot.press("2")
        await pilot.pause(0.3)
        log_text = "".join(strip.text for strip in app.screen.query_one("#log").lines)
        assert "[bold red]pwned[/]\\x1b[31m" in log_text
        await pilot.press("1", "enter")
        await pilot.pause(0.3)
        assert "[bold red]pwned[/]" in str(app.screen.query_one("#detail-title").render())


def test_the_buffer_drops_the_oldest_and_counts():
    buffer = FeedBuffer(capacity=5)
    for i in range(8):
        buffer.put(mkflow(t=i))
    assert buffer.dropped == 3 and len(buffer) == 5
    buffer.put_many([mkflow(t=8), mkflow(t=9)])
    assert buffer.dropped == 5 and buffer.received == 10
    taken = buffer.drain(2) + buffer.drain(10)
    assert [f.time_ns for f in taken] == [T0 + i * 10**9 for i in range(5, 10)]


def test_every_binding_is_in_the_help_table():
    shown = {"question_mark": "?", "slash": "/", "colon": ":", "escape": "esc"}
    documented = " ".join(key for _, key, _ in KEYS).split()
    for holder in (HubbleApp, MainScreen, DropDetailScreen, PolicyScreen):
        for binding in holder.BINDINGS:
            for key in binding.key.split(","):
                assert shown.get(key, key) in documented, f"{holder.__name__}: {key} is not in keys.KEYS"


async def test_the_status_bar_says_which_cluster_kinds_are_not_readable_and_clears_when_they_are():
    state = small_cluster()
    state.set_unreadable("CiliumNetworkPolicy", "CiliumNetworkPolicy: forbidden by RBAC (list ciliumnetworkpolicies "
                                                "at cluster scope)")
    source = PushSource()
    app = create_app(source, cluster=state, engine=PolicyEngine(state, follow=True), clock=lambda: 1000.0)
    async with app.run_test(size=SIZE) as pilot:
        source.push(story_flows())
        await settle(pilot, app, 18)
        assert "cluster incomplete: CiliumNetworkPolicy" in status_text(app)
        state.set_unreadable("CiliumNetworkPolicy", None)  # what live mode does once the kind can be read
        source.push([SourceState(RETRYING, "retrying in 1.5 s")])  # any event redraws the bar
        await pilot.pause(0.3)
        assert "cluster incomplete" not in status_text(app)
