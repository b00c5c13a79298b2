#!/usr/bin/env python3
"""Does the TUI keep answering keys while 20,000 flows/s arrive? Key-response latency and peak memory.

    python benchmarks/bench_tui.py [--seconds 60] [--rate 20000] [--no-cluster]

Ready-made flows (decoded once, before the clock starts: this measures the app, not the decoder) are fed
through the FlowSource interface at a steady rate into the running app, headless but rendering every frame as
it would for a real terminal (the output is discarded). Meanwhile keys are pressed four times a second
(space to pause/follow, 2 and 1 to switch views) and each is timed from the key event to the first frame
written after its action ran. By default the demo's cluster snapshot is loaded, so the policy engine and the
mesh-refusal detector run as they would with --cluster.

Prints flows delivered, flows the buffer dropped, key latency (median, p99, max) and peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textual import events  # noqa: E402
from textual.drivers.headless_driver import HeadlessDriver  # noqa: E402

from hubbletui.flows.decode import event_from_json  # noqa: E402
from hubbletui.flows.model import Flow  # noqa: E402
from hubbletui.sources.base import STREAMING, SourceState, SourceStats  # noqa: E402
from hubbletui.tui.app import create_app, prepare_process  # noqa: E402

KEYS = ("space", "space", "2", "1")
KEY_INTERVAL = 0.25
POOL = 30_000
T0 = 1_795_820_400


def rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def ready_made_flows(n: int, seed: int = 7) -> list[Flow]:
    """A varied pool shaped like a cluster's traffic: 40 namespaces x 8 workloads x 3 pods, each workload
    talking to 4 others on their service port (a few hundred connections in all), world peers, ~10% drops
    (some on ports nothing serves), replies in both directions, fresh client ports."""
    rng = random.Random(seed)
    workloads = [(f"ns-{a}", f"app-{b}") for a in range(40) for b in range(8)]
    pods = {w: [f"{w[1]}-{rng.getrandbits(20):05x}-{i}" for i in range(3)] for w in workloads}
    service_port = {w: rng.choice([80, 443, 8080, 9090, 5432, 6379, 4500, 9161, 3306, 27017]) for w in workloads}
    talks_to = {w: rng.sample(workloads, 4) for w in workloads}

    def endpoint(workload, pod):
        ns, name = workload
        return {"namespace": ns, "pod_name": pod, "identity": 10_000 + workloads.index(workload),
                "labels": [f"k8s:app={name}", f"k8s:io.kubernetes.pod.namespace={ns}"],
                "workloads": [{"kind": "Deployment", "name": name}]}

    flows = []
    for i in range(n):
        client = rng.choice(workloads)
        server = rng.choice(talks_to[client])
        drop = rng.random() < 0.1
        port = rng.randrange(1024, 2048) if drop and rng.random() < 0.3 else service_port[server]
        reply = not drop and rng.random() < 0.4
        src = {"identity": 2, "labels": ["reserved:world"]} if rng.random() < 0.03 else \
            endpoint(client, rng.choice(pods[client]))
        dst = endpoint(server, rng.choice(pods[server]))
        cport = 32768 + rng.randrange(28000)
        l4 = ({"source_port": port, "destination_port": cport, "flags": {"ACK": True, "PSH": True}} if reply else
              {"source_port": cport, "destination_port": port, "flags": {"SYN": True}})
        flow = {"time": f"2026-11-27T23:{(i // 1000) % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z",
                "verdict": "DROPPED" if drop else "FORWARDED",
                "IP": {"source": f"10.{i % 250}.1.{i % 200}", "destination": "10.244.2.7"},
                "l4": {"TCP": l4}, "source": dst if reply else src, "destination": src if reply else dst,
                "traffic_direction": "INGRESS" if reply else "EGRESS", "node_name": f"bench/worker-{i % 5}",
                "is_reply": reply}
        if drop:
            flow["drop_reason_desc"] = "POLICY_DENIED"
        event = event_from_json({"flow": flow})
        assert isinstance(event, Flow)
        flows.append(event)
    return flows


class PacedPool:
    """A FlowSource sending ``rate`` flows/s from a pool, round and round, for as long as it is read."""

    def __init__(self, pool: list[Flow], rate: int):
        self.pool, self.rate = pool, rate
        self.stats = SourceStats()
        self.sent = 0

    def describe(self) -> str:
        return f"bench pool ({self.rate:,} flows/s)"

    async def events(self):
        yield SourceState(STREAMING, "bench")
        loop = asyncio.get_running_loop()
        start, pool, n, i = loop.time(), self.pool, len(self.pool), 0
        while True:
            due = int((loop.time() - start) * self.rate)
            while self.sent < due:
                yield pool[i]
                i = (i + 1) % n
                self.sent += 1
            self.stats.flows = self.sent
            await asyncio.sleep(0.002)


class DiscardingTerminal(HeadlessDriver):
    """Headless input, but the app renders every frame as for a terminal; the bytes are timed and dropped."""

    frames: list[float] = []

    @property
    def is_headless(self) -> bool:
        return False

    def write(self, data: str) -> None:
        DiscardingTerminal.frames.append(time.perf_counter())


async def bench(seconds: float, rate: int, with_cluster: bool) -> dict:
    pool = ready_made_flows(POOL)
    rss_pool = rss_kib("VmRSS")
    cluster = engine = None
    if with_cluster:
        from hubbletui import demo
        from hubbletui.cluster.snapshot import load_snapshot
        from hubbletui.policy.engine import PolicyEngine

        cluster = load_snapshot(demo.cluster_path())
        engine = PolicyEngine(cluster)
    source = PacedPool(pool, rate)
    app = create_app(source, cluster=cluster, engine=engine, driver_class=DiscardingTerminal)
    prepare_process()  # as `hubbletui tui` does before it runs the app
    answered: dict[str, float] = {}

    def timed(name, method):
        def wrapper(*args, **kwargs):
            answered[name] = time.perf_counter()
            return method(*args, **kwargs)
        return wrapper

    task = asyncio.create_task(app.run_async(headless=False, size=(160, 48)))
    while not app.screen_stack or app.feed.state is None:
        await asyncio.sleep(0.05)
    main = app.screen
    app.action_toggle_follow = timed("space", app.action_toggle_follow)
    main.action_show_tab = timed("tab", main.action_show_tab)
    latencies, action_latencies = [], []
    by_kind: dict[str, list[float]] = {"space": [], "tab": []}
    start = time.perf_counter()
    presses = 0
    while time.perf_counter() - start < seconds:
        key = KEYS[presses % len(KEYS)]
        presses += 1
        name = "space" if key == "space" else "tab"
        answered.pop(name, None)
        frames_before = len(DiscardingTerminal.frames)
        sent = time.perf_counter()
        app.post_message(events.Key(key, " " if key == "space" else key))
        while True:
            await asyncio.sleep(0.001)
            done = answered.get(name)
            if done is not None:
                drawn = [f for f in DiscardingTerminal.frames[frames_before:] if f >= done]
                if drawn:
                    latencies.append(drawn[0] - sent)
                    by_kind[name].append(drawn[0] - sent)
                    action_latencies.append(done - sent)
                    break
            if time.perf_counter() - sent > 5:
                latencies.append(float("inf"))
                break
        await asyncio.sleep(max(0.0, KEY_INTERVAL - (time.perf_counter() - sent)))
    elapsed = time.perf_counter() - start
    result = {
        "seconds": elapsed, "rate asked": rate, "flows sent": source.sent,
        "flows in the store": app.store.stats.flows, "buffer dropped": app.feed.dropped,
        "buffered at the end": len(app.feed), "keys": len(latencies),
        "key->frame median ms": statistics.median(latencies) * 1000,
        "key->frame p99 ms": sorted(latencies)[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
        "key->frame max ms": max(latencies) * 1000,
        "key->action median ms": statistics.median(action_latencies) * 1000,
        "pause/follow (space) median ms": statistics.median(by_kind["space"]) * 1000,
        "pause/follow (space) max ms": max(by_kind["space"]) * 1000,
        "switch view (1, 2) median ms": statistics.median(by_kind["tab"]) * 1000,
        "switch view (1, 2) max ms": max(by_kind["tab"]) * 1000,
        "rss after the pool MiB": rss_pool / 1024, "peak rss MiB": rss_kib("VmHWM") / 1024,
        "store rows": len(app.store.rows), "rows evicted": app.store.stats.rows_evicted,
        "pods ranked": len(app.store.pods), "mesh refusals": len(app.store.refusals),
    }
    app.exit()
    await task
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=int, default=20_000)
    parser.add_argument("--no-cluster", action="store_true", help="flows only: no policy engine, no detector")
    args = parser.parse_args()
    result = asyncio.run(bench(args.seconds, args.rate, not args.no_cluster))
    width = max(map(len, result))
    for name, value in result.items():
        shown = f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
        print(f"{name:<{width}}  {shown}")


if __name__ == "__main__":
    main()
