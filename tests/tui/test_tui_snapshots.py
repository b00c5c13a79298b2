"""Snapshot tests of the main screens at a fixed size with a frozen clock and UTC times.

Update after an intended change of the UI: `pytest tests/test_tui_snapshots.py --snapshot-update`, then look at
the SVGs under tests/__snapshots__/ before committing them.
"""

from __future__ import annotations

import itertools
import time


from hubbletui.policy.engine import PolicyEngine
from hubbletui.sources.fake import FakeSource
from hubbletui.tui.app import create_app
from tui_support import settle, small_cluster, story_flows

SIZE = (150, 36)
FROZEN = 1_795_820_460.0  # 2026-11-27T23:01:00Z


def demo_like_app(with_cluster: bool):
    state = small_cluster() if with_cluster else None
    engine = PolicyEngine(state) if state is not None else None
    source = FakeSource(story_flows(), name="snapshot flows")
    # every tick a redraw: the redraw throttle's clock steps 10 s a call, so what is drawn does not depend on
    # how fast this machine is
    app = create_app(source, cluster=state, engine=engine, clock=lambda: FROZEN,
                     ticks=itertools.count(0.0, 10.0).__next__)
    app.animation_level = "none"
    return app


async def loaded(pilot) -> None:
    await settle(pilot, pilot.app, 18)


def test_drops_by_pod(snap_compare):
    assert snap_compare(demo_like_app(with_cluster=True), terminal_size=SIZE, run_before=loaded)


def test_flows_and_raw_log(snap_compare):
    async def run_before(pilot):
        await loaded(pilot)
        await pilot.press("2")
        await pilot.pause(0.2)

    assert snap_compare(demo_like_app(with_cluster=False), terminal_size=SIZE, run_before=run_before)


def test_drop_detail(snap_compare):
    async def run_before(pilot):
        await loaded(pilot)
        await pilot.press("enter")
        deadline = time.monotonic() + 5
        while not getattr(pilot.app.screen, "analyses", None) and time.monotonic() < deadline:
            await pilot.pause(0.05)
        await pilot.pause(0.2)

    assert snap_compare(demo_like_app(with_cluster=True), terminal_size=SIZE, run_before=run_before)


def test_help(snap_compare):
    async def run_before(pilot):
        await loaded(pilot)
        await pilot.press("question_mark")

    assert snap_compare(demo_like_app(with_cluster=False), terminal_size=SIZE, run_before=run_before)
