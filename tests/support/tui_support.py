"""Helpers for the store and TUI tests: flows made through the real JSON decoder, and a source that replays a
list of events through the FlowSource interface (as a recording would, without pacing)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from hubbletui import demo
from hubbletui.cluster.model import ClusterState
from hubbletui.cluster.snapshot import load_snapshot
from hubbletui.flows.decode import event_from_json
from hubbletui.flows.model import Event, Flow
from hubbletui.sources.base import ENDED, STREAMING, SourceState, SourceStats

T0 = 1_795_820_400_000_000_000  # 2026-11-27T23:00:00Z
SEC = 1_000_000_000


def mkflow(src: str = "database/fdb-exporter-5d9c8-abcde", dst: str = "database/fdb-0", port: int = 4500, *,
           verdict: str = "DROPPED", reason: str = "POLICY_DENIED", direction: str = "EGRESS", t: float = 0.0,
           flags: Iterable[str] = ("SYN",), sport: int = 40000, reply: bool | None = False,
           src_workload: str | None = "fdb-exporter", dst_workload: str | None = "fdb",
           src_labels: Iterable[str] = ("k8s:app=fdb-exporter",), dst_labels: Iterable[str] = ("k8s:app=fdb",),
           proto: str = "TCP", src_ip: str = "10.244.1.5", dst_ip: str = "10.244.2.7") -> Flow:
    """A flow; an endpoint written without a slash is a reserved identity (world, host) or an IP."""
    body = {"time": _rfc3339(T0 + int(t * SEC)), "verdict": verdict,
            "IP": {"source": src_ip, "destination": dst_ip},
            "source": _endpoint(src, src_workload, src_labels),
            "destination": _endpoint(dst, dst_workload, dst_labels),
            "traffic_direction": direction, "node_name": "demo/worker-1"}
    if proto == "TCP":
        body["l4"] = {"TCP": {"source_port": sport, "destination_port": port, "flags": {f: True for f in flags}}}
    elif proto == "UDP":
        body["l4"] = {"UDP": {"source_port": sport, "destination_port": port}}
    if verdict == "DROPPED":
        body["drop_reason_desc"] = reason
    if reply is not None:
        body["is_reply"] = reply
    event = event_from_json({"flow": body})
    assert isinstance(event, Flow)
    return event


def _endpoint(ref: str, workload: str | None, labels: Iterable[str]) -> dict:
    if "/" not in ref:
        return {"identity": 2, "labels": [f"reserved:{ref}"]} if not ref[0].isdigit() else {}
    ns, pod = ref.split("/", 1)
    out = {"namespace": ns, "pod_name": pod, "labels": [*labels, f"k8s:io.kubernetes.pod.namespace={ns}"],
           "identity": 10000 + len(pod)}
    if workload:
        out["workloads"] = [{"kind": "Deployment", "name": workload}]
    return out


def _rfc3339(ns: int) -> str:
    import datetime

    secs, rest = divmod(ns, SEC)
    stamp = datetime.datetime.fromtimestamp(secs, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{rest:09d}Z"


class ListSource:
    """A FlowSource over a list: STREAMING, the events (yielding to the loop now and then), ENDED."""

    def __init__(self, events: Iterable[Event], name: str = "test flows", hold: bool = False):
        self._events = list(events)
        self.stats = SourceStats()
        self.name = name
        self.hold = hold  # stay open after the last event, as a live stream would

    def describe(self) -> str:
        return self.name

    async def events(self):
        yield SourceState(STREAMING, "")
        for i, event in enumerate(self._events):
            yield event
            if i % 256 == 255:
                await asyncio.sleep(0)
        if self.hold:
            await asyncio.Event().wait()
        yield SourceState(ENDED, "")


class PushSource:
    """A live-like FlowSource the test feeds while the app runs (from any thread): `push(events)`."""

    def __init__(self, name: str = "pushed flows"):
        import queue

        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.stats = SourceStats()
        self.name = name

    def describe(self) -> str:
        return self.name

    def push(self, events: Iterable[Event | SourceState]) -> None:
        for event in events:
            self._queue.put(event)

    async def events(self):
        import queue

        yield SourceState(STREAMING, "")
        while True:
            try:
                yield self._queue.get_nowait()
            except queue.Empty:
                await asyncio.sleep(0.05)


async def settle(pilot, app, flows: int, timeout: float = 10.0) -> None:
    """Wait until the app's store holds ``flows`` flows and the views were redrawn from it."""
    import time

    deadline = time.monotonic() + timeout
    while app.store.stats.flows < flows:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {app.store.stats.flows} of {flows} flows arrived in {timeout} s")
        await pilot.pause(0.05)
    app.redraw()  # at the next tick, rather than when the views' own redraw interval comes round
    await pilot.pause(0.25)


async def prompt(pilot, key: str, text: str) -> None:
    """Open the `/` or `:` prompt, paste ``text`` into it (as a terminal's bracketed paste does) and press enter.
    Pasting instead of typing keeps the tests fast: Pilot waits for the app to go idle after every key."""
    from textual import events

    # the filter prompt opens with the current filter: start afresh (the command prompt opens empty)
    await pilot.press(key, "ctrl+u") if key == "slash" else await pilot.press(key)
    if text:
        pilot.app.focused.post_message(events.Paste(text))
        await pilot.pause()
    await pilot.press("enter")
    await pilot.pause(0.15)  # the views redraw at the next tick


EXPORTER = "database/fdb-exporter-5d9c8-abcde"  # the story's crashlooping exporter, as mkflow names it


def story_flows(exporter_drops: int = 10, prometheus_drops: int = 3) -> list:
    flows = [mkflow(t=i, sport=40000 + i) for i in range(exporter_drops)]
    flows += [mkflow(src="monitoring/prometheus-0", dst=EXPORTER, port=9161, direction="INGRESS", t=20 + i,
                     src_workload="prometheus", dst_workload="fdb-exporter", src_labels=("k8s:app=prometheus",),
                     dst_labels=("k8s:app=fdb-exporter",)) for i in range(prometheus_drops)]
    flows += [mkflow(verdict="FORWARDED", src="shop/frontend-1", dst="shop/cart-1", port=8080, t=30 + i,
                     src_workload="frontend", dst_workload="cart") for i in range(5)]
    return flows


def small_cluster() -> ClusterState:
    state = ClusterState(source="test")
    for ns in ("database", "monitoring"):
        state.ensure_namespace(ns)
    state.upsert({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "fdb-exporter-5d9c8-abcde", "namespace": "database", "labels": {"app": "fdb-exporter"}},
        "spec": {"serviceAccountName": "fdb-exporter", "containers": [{"name": "x"}]},
        "status": {"phase": "Running", "podIP": "10.244.1.5", "containerStatuses": [
            {"name": "x", "restartCount": 7, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}})
    state.upsert({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "fdb-0", "namespace": "database", "labels": {"app": "fdb"}},
        "spec": {"containers": [{"name": "fdb"}]}, "status": {"phase": "Running", "podIP": "10.244.2.7"}})
    state.upsert({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
                  "metadata": {"name": "fdb-clients", "namespace": "database"},
                  "spec": {"endpointSelector": {"matchLabels": {"fdb-client": "true"}},
                           "egress": [{"toEndpoints": [{"matchLabels": {"app": "fdb"}}],
                                       "toPorts": [{"ports": [{"port": "4500", "protocol": "TCP"}]}]}]}})
    state.upsert({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
                  "metadata": {"name": "default-deny", "namespace": "database"},
                  "spec": {"endpointSelector": {}, "egress": [{}], "ingress": [{}]}})
    return state


def snapshot_exporter() -> str:
    """The scenario's crashlooping exporter pod: the one its snapshot (taken before any fix) holds."""
    names = [p["metadata"]["name"] for p in load_snapshot(demo.cluster_path()).list("Pod")
             if p["metadata"]["namespace"] == "database" and p["metadata"]["name"].startswith("fdb-exporter-")]
    assert len(names) == 1, names
    return f"database/{names[0]}"


OLD_EXPORTER = snapshot_exporter()


async def until(pilot, check, timeout: float = 20.0) -> None:
    """Wait (letting the app run) until ``check()`` holds."""
    import time

    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout} s")
        await pilot.pause(0.05)
