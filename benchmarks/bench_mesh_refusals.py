"""Mesh refusal detection: the per-flow cost of the connection tracker, and what `refusals()` costs.

    .venv/bin/python benchmarks/bench_mesh_refusals.py

Synthetic traffic: 2,000 client pods in 200 workloads open short connections to the 4 mesh workloads of
tests/fixtures/mesh (800 groups, each a policy question for the istio layer); each
connection is SYN, SYN-ACK, ACK, data both ways, a close, every packet seen at two observation points (what
Hubble reports for cross-node traffic). Prints medians of 5 runs.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from hubbletui.cluster.snapshot import load_snapshot
from hubbletui.flows.model import Endpoint, Flow
from hubbletui.diagnose.mesh_refusals import MeshRefusalDetector
from hubbletui.policy.engine import PolicyEngine

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "mesh"
MS = 1_000_000


def endpoint(app: str, index: int, ip: str) -> Endpoint:
    labels = (f"k8s:app={app}", "k8s:io.kubernetes.pod.namespace=shop",
              f"k8s:io.cilium.k8s.policy.serviceaccount={app}",
              "k8s:io.cilium.k8s.namespace.labels.istio-injection=enabled", "k8s:security.istio.io/tlsMode=istio")
    return Endpoint("shop", f"{app}-{index}", labels, 1000 + index, (("Deployment", app),), ip, "")


def tcp(t, src, dst, sport, dport, flags, reply):
    return Flow(t, "FORWARDED", 0, "", "EGRESS", src, dst, "TCP", sport, dport, flags, None, "n", reply, 4, 0,
                "L3_L4", 0, "TO_ENDPOINT", (), (), (), (), None)


def traffic(connections: int) -> list[Flow]:
    clients = [endpoint(f"client{i % 200}", i, f"10.1.{i // 250}.{i % 250}") for i in range(2000)]
    # the fixture's mesh workloads, as Hubble names them (so the policy side has real work to do)
    servers = [Endpoint("shop", f"{app}-5d8f7c9b6d-{app[:3]}{len(app)}x", (), 40200 + i, (("Deployment", app),),
                        f"10.0.2.{20 + i}", "") for i, app in enumerate(("payments", "catalog", "ledger", "audit"))]
    flows = []
    t = 0
    for n in range(connections):
        c, s = clients[n % len(clients)], servers[(n // 7) % len(servers)]
        port = 32768 + n % 28000
        close = ("RST",) if n % 5 == 0 else ("FIN", "ACK")
        for dt, flags, reply in ((0, ("SYN",), False), (100_000, ("SYN", "ACK"), True), (200_000, ("ACK",), False),
                                 (300_000, ("PSH", "ACK"), False), (900_000, ("PSH", "ACK"), True),
                                 (2 * MS, close, True)):
            packet = tcp(t + dt, s, c, 8080, port, flags, True) if reply else tcp(t + dt, c, s, port, 8080, flags,
                                                                                  False)
            flows.append(packet)
            flows.append(packet._replace(time_ns=packet.time_ns + 30_000, trace_point="TO_OVERLAY"))
        t += 50_000  # 20,000 connections per second
    return flows


def main() -> None:
    state = load_snapshot(FIXTURES)
    flows = traffic(20_000)
    per_flow, listing, groups = [], [], 0
    for _ in range(5):
        detector = MeshRefusalDetector(PolicyEngine(state, follow=True))
        observe = detector.observe
        start = time.perf_counter()
        for flow in flows:
            observe(flow)
        per_flow.append((time.perf_counter() - start) / len(flows))
        start = time.perf_counter()
        detector.refusals()  # first call: resolves endpoints and evaluates policies
        first = time.perf_counter() - start
        start = time.perf_counter()
        detector.refusals()  # later calls (a redraw timer): verdicts cached until the cluster state changes
        listing.append((first, time.perf_counter() - start))
        groups = len(detector.tracker.groups())
    print(f"flows: {len(flows)}  groups: {groups}  open connections at the end: {detector.tracker.open_connections}")
    print(f"observe: median {statistics.median(per_flow) * 1e6:.2f} us/flow "
          f"({1 / statistics.median(per_flow):,.0f} flows/s)")
    print(f"refusals(): first {statistics.median(a for a, _ in listing) * 1e3:.1f} ms, "
          f"cached {statistics.median(b for _, b in listing) * 1e3:.1f} ms for {groups} groups")


if __name__ == "__main__":
    main()
