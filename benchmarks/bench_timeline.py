"""Cost of the cluster timeline next to the 50 µs a flow may take at 20,000 flows/s.

    python benchmarks/bench_timeline.py [--changes 1000] [--runs 5]

Prints medians over --runs:
  record     one cluster change recorded (what the live watch adds per event)
  state_at   one view as of a random time within the window (a bisect per object read, whatever the time)
  in_order   one view per flow for flows in time order over the last 50 changes (a replay or live stream)
  get        one object read through a view, against a read of the store itself
Only the per-flow figures (state_at + get) count against ingest: a flow per 50 µs at 20,000 flows/s.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from hubbletui.cluster.model import ClusterState  # noqa: E402
from hubbletui.cluster.timeline import Timeline  # noqa: E402


def pod(i: int, gen: int) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"p{i}", "namespace": "ns", "labels": {"gen": str(gen)}}}


def run(changes: int) -> dict[str, float]:
    state = ClusterState()
    for i in range(5000):
        state.upsert(pod(i, 0))
    clock = [0.0]
    tl = Timeline(state, max_changes=changes, max_age_s=1e9, clock=lambda: clock[0])
    rnd = random.Random(1)
    t0 = time.perf_counter()
    for n in range(changes):
        clock[0] = float(n)
        state.upsert(pod(rnd.randrange(5000), n + 1))
    record = (time.perf_counter() - t0) / changes
    times = [rnd.uniform(0, changes) for _ in range(2000)]
    t0 = time.perf_counter()
    views = [tl.state_at(t) for t in times]
    view_cost = (time.perf_counter() - t0) / len(times)
    ordered = sorted(rnd.uniform(changes - 50, changes) for _ in range(20000))
    t0 = time.perf_counter()
    for t in ordered:
        tl.state_at(t)
    in_order = (time.perf_counter() - t0) / len(ordered)
    names = [f"p{rnd.randrange(5000)}" for _ in range(2000)]
    t0 = time.perf_counter()
    for v, name in zip(views, names):
        v.get("Pod", "ns", name)
    get_view = (time.perf_counter() - t0) / len(names)
    t0 = time.perf_counter()
    for name in names:
        state.get("Pod", "ns", name)
    get_store = (time.perf_counter() - t0) / len(names)
    return {"record": record, "state_at": view_cost, "in_order": in_order, "get_view": get_view, "get_store": get_store}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    results = [run(args.changes) for _ in range(args.runs)]
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    for k, v in med.items():
        print(f"{k:10} {v * 1e6:8.2f} µs")
    for label, view in (("random", "state_at"), ("in order", "in_order")):
        per_flow = med[view] + med["get_view"]
        print(f"per flow, {label:8} {per_flow * 1e6:8.2f} µs = {per_flow / 50e-6 * 100:.1f}% of a 50 µs budget")


if __name__ == "__main__":
    main()
