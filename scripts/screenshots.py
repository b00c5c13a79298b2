#!/usr/bin/env python3
"""Make the README's screenshots from the built-in demo: the TUI driven headless, saved as SVG, turned into PNG.

    .venv/bin/pip install cairosvg            # the `screenshots` extra
    apt-get install fonts-firacode            # the SVGs name Fira Code; without it the PNGs fall back to another font
    .venv/bin/python scripts/screenshots.py [--out screenshots] [--keep-svg]

The app reads the scenario the way `hubbletui demo` does (our replay server on a loopback port, the gRPC
source, the scenario's bundle: its cluster and the changes made to it as the story goes), with the clock frozen
at the end of the story and times in UTC.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZE = (170, 45)  # wide enough for the drops table's RESOLVED column
END_OF_STORY = 1_795_820_670.0  # 2026-11-27T23:04:30Z
PROMETHEUS = "monitoring/prometheus-0"


async def until(pilot, check, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("screenshots: the demo did not reach the expected state in time")
        await pilot.pause(0.05)


def demo_app(with_history: bool):
    """The demo as `hubbletui demo` reads it (with its cluster history: each stage ends resolved), or as
    `--input-file flows.jsonl --cluster cluster/` would (the starting state only: the fixes as first found)."""
    from hubbletui import demo
    from hubbletui.cluster.bundle import load_bundle
    from hubbletui.cluster.snapshot import load_snapshot
    from hubbletui.policy.engine import PolicyEngine
    from hubbletui.server.playlist import Playlist
    from hubbletui.sources.loopback import LoopbackReplaySource
    from hubbletui.tui.app import create_app

    bundle = load_bundle(demo.scenario_dir()) if with_history else None
    state = bundle.state if bundle is not None else load_snapshot(demo.cluster_path())
    source = LoopbackReplaySource(Playlist.load(demo.recording_path(), print), speed=None, name="demo")
    app = create_app(source, cluster=state, engine=PolicyEngine(state, cluster_name=demo.CLUSTER_NAME),
                     clock=lambda: END_OF_STORY, out_dir=Path(tempfile.gettempdir()),
                     timeline=bundle.timeline if bundle is not None else None)
    app.animation_level = "none"
    return app


async def shoot(out_svg: Path) -> list[Path]:
    from hubbletui import demo
    from hubbletui.flows.recording import read_events

    total = sum(1 for e in read_events(str(demo.recording_path())) if type(e).__name__ == "Flow")
    saved: list[Path] = []

    def save(app, name: str) -> None:
        saved.append(Path(app.save_screenshot(f"{name}.svg", path=str(out_svg))))

    app = demo_app(with_history=True)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.store.stats.flows >= total and app.store.refusals)
        # the loop tracker's passes: each stage resolved by its fix
        await until(pilot, lambda: sum(1 for r in app.loop.rows.values() if r.resolved_by) >= 3)
        app.redraw()
        await pilot.pause(0.4)
        save(app, "drops-by-pod")
        await pilot.press("3")
        await pilot.pause(0.4)
        save(app, "changes")
        await pilot.press("2")
        await pilot.pause(0.4)
        save(app, "flows")

    app = demo_app(with_history=False)

    async def detail_of(pod: str) -> None:
        app.open_pod(pod)
        await until(pilot, lambda: getattr(app.screen, "analysis", None) is not None)
        await pilot.pause(0.3)

    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.store.stats.flows >= total and app.store.refusals)
        # the crashlooping exporter is the top drop; the pod its label fix made is refused by Istio
        exporters = [p.ref for p in app.store.ranked_pods() if p.ref.startswith("database/fdb-exporter-")]
        old_exporter = next(p for p in exporters if app.store.pods[p].refused == 0)
        new_exporter = next(p for p in exporters if app.store.pods[p].refused)
        await detail_of(old_exporter)
        save(app, "drop-detail-label-fix")
        await pilot.press("escape")
        await detail_of(new_exporter)
        save(app, "drop-detail-istio-refusal")
        await pilot.press("escape")
        await detail_of(PROMETHEUS)
        save(app, "drop-detail-new-policy")
        await pilot.press("escape")
        app.open_policy(old_exporter)
        await until(pilot, lambda: any("may reach" in str(body.render()) for body in app.screen.query("#policy-body")))
        await pilot.pause(0.2)
        save(app, "policy-view")
        await pilot.press("escape", "question_mark")
        await pilot.pause(0.2)
        save(app, "help")
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--keep-svg", action="store_true", help="also keep the SVGs next to the PNGs")
    args = parser.parse_args()
    try:
        import cairosvg
    except ImportError:
        raise SystemExit("screenshots: needs cairosvg (pip install cairosvg, the `screenshots` extra)") from None
    os.environ["TZ"] = "UTC"
    time.tzset()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        svg_dir = args.out if args.keep_svg else Path(tmp)
        for svg in asyncio.run(shoot(svg_dir)):
            png = args.out / (svg.stem + ".png")
            cairosvg.svg2png(url=str(svg), write_to=str(png), output_width=1600)
            print(png)


if __name__ == "__main__":
    main()
