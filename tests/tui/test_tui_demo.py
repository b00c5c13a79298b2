"""The TUI on the built-in demo scenario, read the way `hubbletui demo` reads it: our replay server on a loopback
port, the gRPC source, the scenario's cluster snapshot and policy engine. Pilot drives it."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

from paths import shared_or_skip
from hubbletui import demo
from hubbletui.cluster.snapshot import load_snapshot
from hubbletui.flows.recording import read_events
from hubbletui.policy.engine import PolicyEngine
from hubbletui.server.playlist import Playlist
from hubbletui.sources.base import ENDED
from hubbletui.sources.recording_source import RecordingSource
from hubbletui.tui.app import create_app
from hubbletui.sources.loopback import LoopbackReplaySource
from hubbletui.tui.screens.detail import DropDetailScreen
from hubbletui.tui.widgets.live_table import LiveTable
from tui_support import OLD_EXPORTER, prompt, settle

SIZE = (160, 44)




def flow_count() -> int:
    return sum(1 for e in read_events(str(demo.recording_path())) if type(e).__name__ == "Flow")


def demo_app(tmp_path: Path, source=None):
    state = load_snapshot(demo.cluster_path())
    source = source or LoopbackReplaySource(Playlist.load(demo.recording_path(), print), speed=None, name="demo")
    app = create_app(source, cluster=state, engine=PolicyEngine(state), clock=lambda: 1_795_820_700.0,
                     out_dir=tmp_path)
    app.animation_level = "none"
    return app


async def until(pilot, check, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout} s")
        await pilot.pause(0.05)


def pod_ids(app) -> list[str]:
    table = app.screen.query_one("#pods", LiveTable)
    return table.row_ids


async def test_exporter_is_the_top_drop_and_its_first_fix_is_the_label(tmp_path):
    app = demo_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app, flow_count())
        await until(pilot, lambda: app.store.refusals)  # the detector's verdict comes once a second
        await pilot.pause(0.3)
        ranked = pod_ids(app)
        assert ranked[0] == OLD_EXPORTER
        table = app.screen.query_one("#pods", LiveTable)
        assert re.fullmatch(r"CrashLoopBackOff \d+ restarts", table.get_cell(OLD_EXPORTER, "status").plain.strip())
        # the pod made by the label fix (not in the snapshot): Istio refuses it, and that counts as drops, marked
        new_exporter = next(p for p in ranked if p.startswith("database/fdb-exporter-") and p != OLD_EXPORTER)
        assert table.get_cell(new_exporter, "mesh").plain.strip().startswith("refused ×")
        assert table.get_cell(new_exporter, "status").plain.strip() == "not in cluster"
        assert "monitoring/prometheus-0" in ranked
        await pilot.press("enter")
        assert isinstance(app.screen, DropDetailScreen)
        await until(pilot, lambda: app.screen.analysis is not None)
        await pilot.pause(0.2)
        first = app.screen.analysis.suggestions[0]
        assert first.kind == "label-change" and 'fdb-client="true"' in first.summary
        assert first.blast.count == 0
        shown = str(app.screen.query_one("#explanation-text").render())
        assert "isolated for egress" in shown and "lacks (subject): label fdb-client=true" in shown


async def test_w_writes_a_fix_that_validates_against_the_cnp_schema(tmp_path):
    schema = json.loads(shared_or_skip("schemas", "cilium.io_ciliumnetworkpolicy_v2.json").read_text())
    app = demo_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app, flow_count())
        await prompt(pilot, "colon", "pod prometheus")
        assert pod_ids(app) == ["monitoring/prometheus-0"]
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.analysis is not None)
        fix = app.screen.fix
        assert fix.kind == "new-policy"
        await pilot.press("w")
        await pilot.pause(0.1)
        await pilot.press("enter")
        await pilot.pause(0.2)
        written = list(tmp_path.glob("*.yaml"))
        assert len(written) == 1 and not list(tmp_path.glob(".*.tmp"))
        docs = [d for d in yaml.safe_load_all(written[0].read_text()) if d]
        assert [d["kind"] for d in docs] == ["CiliumNetworkPolicy"]
        assert list(Draft202012Validator(schema).iter_errors(docs[0])) == []
        assert docs[0]["spec"]["ingress"][0]["toPorts"][0]["ports"][0]["port"] == "9161"
        # the other keys of the screen: patch view, format, copy, mark; quitting returns what was marked
        await pilot.press("d")
        assert "kubectl&#160;apply&#160;-f&#160;FILE" in app.export_screenshot()
        await pilot.press("c")
        assert "CiliumNetworkPolicy" in app.clipboard or "kubectl" in app.clipboard
        await pilot.press("m")
        await pilot.press("f")
        await until(pilot, lambda: app.screen.analysis is not None)
        assert app.screen.fmt == "k8s"
        assert app.screen.fix is not None and "NetworkPolicy" in app.screen.fix.summary
        await pilot.press("escape", "q")
    assert [s.id for _, s in app.return_value] == [fix.id]


async def test_replay_paces_the_recording_and_ends(tmp_path):
    total = flow_count()
    source = RecordingSource(demo.recording_path(), speed=120.0)  # 270 s of traffic in about 2.3 s
    app = demo_app(tmp_path, source)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.store.stats.flows > 0)
        assert app.store.stats.flows < total  # paced: not everything at once
        await until(pilot, lambda: app.feed.state is not None and app.feed.state.state == ENDED, timeout=20)
        await pilot.pause(0.2)
        assert app.store.stats.flows == total
        assert "ended" in str(app.screen.query_one("#status").render())
