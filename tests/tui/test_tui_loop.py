"""Closing the loop in the TUI: the demo read as the bundle it is (its cluster changes as the story goes), so
each stage's drops are marked resolved by the fix that ended them, the pods' status follows the replay's time,
and the changes view lists each change with the drops it touched. Pilot drives it."""

from __future__ import annotations



from hubbletui import demo
from hubbletui.cluster.bundle import load_bundle
from hubbletui.flows.recording import read_events
from hubbletui.policy.engine import PolicyEngine
from hubbletui.sources.recording_source import RecordingSource
from hubbletui.tui.app import create_app
from hubbletui.tui.screens.detail import DropDetailScreen
from hubbletui.tui.widgets.live_table import LiveTable
from tui_support import OLD_EXPORTER, settle, until

SIZE = (170, 44)
T0_S = 1_795_820_400  # the recording's start, 23:00:00Z
PROMETHEUS = "monitoring/prometheus-0"


def replay_until(tmp_path, seconds: float):
    """The demo's flows up to `seconds` into the story, as a recording file."""
    lines = demo.recording_path().read_bytes().splitlines(keepends=True)
    kept = [line for line, event in zip(lines, read_events(str(demo.recording_path())))
            if event.time_ns < (T0_S + seconds) * 10**9]
    path = tmp_path / f"until-{seconds:.0f}.jsonl"
    path.write_bytes(b"".join(kept))
    return path, sum(1 for e in read_events(str(path)) if type(e).__name__ == "Flow")


def loop_app(tmp_path, recording):
    bundle = load_bundle(demo.scenario_dir())
    engine = PolicyEngine(bundle.state, cluster_name=demo.CLUSTER_NAME)
    app = create_app(RecordingSource(str(recording), speed=None), cluster=bundle.state, engine=engine,
                     timeline=bundle.timeline, clock=lambda: T0_S + 300.0, out_dir=tmp_path)
    app.animation_level = "none"
    return app


def cell(app, table: str, row: str, column: str) -> str:
    value = app.screen.query_one(f"#{table}", LiveTable).get_cell(row, column)
    return (value.plain if hasattr(value, "plain") else value.label).strip()


def new_exporter(app) -> str:
    return next(p for p in app.store.pods if p.startswith("database/fdb-exporter-") and p != OLD_EXPORTER)


async def test_halfway_only_the_label_fix_has_resolved_its_drops(tmp_path):
    """At 170 s the Deployment's label fix is in (its drops stopped), the AuthorizationPolicy and scrape fixes
    are still to come: their drops are not resolved, and the changes view holds no later change."""
    recording, flows = replay_until(tmp_path, 170)
    app = loop_app(tmp_path, recording)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app, flows)
        await until(pilot, lambda: cell(app, "pods", OLD_EXPORTER, "loop") == "23:02:08")
        assert cell(app, "pods", OLD_EXPORTER, "status") == "deleted 23:02:28"
        assert cell(app, "pods", new_exporter(app), "status") == "Running"
        await pilot.pause(1.5)  # another pass of the loop tracker must not resolve what is still dropping
        assert cell(app, "pods", PROMETHEUS, "loop") == ""
        assert cell(app, "pods", new_exporter(app), "loop") == ""
        await pilot.press("3")
        await pilot.pause(0.3)
        changes = app.screen.query_one("#changes", LiveTable)
        kinds = [cell(app, "changes", row, "kind") for row in changes.row_ids]
        assert "AuthorizationPolicy" not in kinds and "CiliumNetworkPolicy" not in kinds
        assert kinds[-1] == "Deployment"  # the oldest change, at the bottom


async def test_the_whole_story_resolves_stage_by_stage(tmp_path):
    app = loop_app(tmp_path, demo.recording_path())
    flows = sum(1 for e in read_events(str(demo.recording_path())) if type(e).__name__ == "Flow")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app, flows)
        await until(pilot, lambda: all(cell(app, "pods", p, "loop") for p in (OLD_EXPORTER, new_exporter(app),
                                                                            PROMETHEUS)))
        # each stage by its own fix: the label (Deployment), the principal (AuthorizationPolicy), the port (CNP)
        assert [cell(app, "pods", p, "loop") for p in (OLD_EXPORTER, new_exporter(app), PROMETHEUS)] == \
            ["23:02:08", "23:03:00", "23:03:53"]
        assert cell(app, "pods", "shop/cart-s5mfnd79dq-52b9g", "loop") == ""  # world -> cart: never fixed

        await pilot.press("3")
        await pilot.pause(0.3)
        table = app.screen.query_one("#changes", LiveTable)
        touched = {cell(app, "changes", r, "kind"): cell(app, "changes", r, "touched") for r in table.row_ids
                   if cell(app, "changes", r, "touched")}
        assert touched["CiliumNetworkPolicy"].startswith("resolved monitoring/prometheus → database/fdb-exporter")
        assert touched["AuthorizationPolicy"].startswith("resolved database/fdb-exporter → database/foundation")
        assert touched["Deployment"].startswith("resolved database/fdb-exporter → database/foundation")
        assert touched["Pod"].startswith("started monitoring/prometheus → database/fdb-exporter")

        # enter on the scrape policy's change: the drops it resolved, with the note saying so
        row = next(r for r in table.row_ids if cell(app, "changes", r, "kind") == "CiliumNetworkPolicy")
        table.move_cursor(table.row_ids.index(row))
        await pilot.press("enter")
        assert isinstance(app.screen, DropDetailScreen)
        await until(pilot, lambda: app.screen.analysis is not None)
        notes = app.screen.analysis.analysis.notes
        assert any(n.startswith("resolved 2 s after the last drop: CiliumNetworkPolicy "
                                "database/allow-prometheus-scrape was modified: spec.ingress changed") for n in notes)
