"""Policy engine speed on the synthetic cluster (benchmarks/synthetic_cluster.py: 5,000 pods, 500 workloads,
1,000 policies).

    .venv/bin/python benchmarks/bench_policy.py [--queries 2000] [--runs 3]

Prints medians over --runs:
  build        PolicyEngine(state) + PolicyGraph(engine): compile every policy, index every subject and rule,
               add every selects/allows edge                                       target < 5 s
  trace        one engine.trace(pod, pod, port) on random pairs of pods, each pair fresh to the engine's
               per-identity caches at first: median and p99                         target median < 2 ms
  batch        traces per second, as `trace --batch` runs them (verdicts without nearest-rule ranking)
  what-if      one candidate of a suggestion: what_if(upsert) + trace + newly_allowed, for 30 candidates
               (new NetworkPolicies and relabelled pod templates)                  target: 30 in < 200 ms
               A relabel to tier=api is the heavy case here: nearly every rule of the synthetic cluster
               names a tier, so the pod's whole neighbourhood is re-evaluated.
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import synthetic_cluster  # noqa: E402

from hubbletui.policy.engine import PolicyEngine  # noqa: E402
from hubbletui.policy.graph import PolicyGraph  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_build(state) -> tuple[float, float, PolicyEngine, PolicyGraph]:
    t0 = time.perf_counter()
    engine = PolicyEngine(state)
    t1 = time.perf_counter()
    graph = PolicyGraph(engine)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, engine, graph


def bench_trace(engine: PolicyEngine, queries: int, seed: int, nearest: bool = True) -> list[float]:
    rng = random.Random(seed)
    pods = [s for s in engine.inventory.subjects() if s.kind == "pod"]
    ports = [8080, 8081, 8082, 9090, 53, 443, 22, 8030]
    times = []
    for _ in range(queries):
        src, dst = rng.sample(pods, 2)
        port = rng.choice(ports)
        t0 = time.perf_counter()
        engine.trace(src.id, dst.id, port, "TCP", nearest=nearest)
        times.append(time.perf_counter() - t0)
    return times


def candidates(engine: PolicyEngine, state, count: int, seed: int) -> list[dict]:
    """Half new NetworkPolicies admitting one workload to another, half pod templates given a new label."""
    rng = random.Random(seed)
    deployments = [d for d in state.list("Deployment") if d["metadata"]["namespace"] != "kube-system"]
    out = []
    for i in range(count):
        dst, src = rng.sample(deployments, 2)
        if i % 2:
            out.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                        "metadata": {"name": f"candidate-{i}", "namespace": dst["metadata"]["namespace"]},
                        "spec": {"podSelector": {"matchLabels": dst["spec"]["template"]["metadata"]["labels"]},
                                 "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                                     "kubernetes.io/metadata.name": src["metadata"]["namespace"]}},
                                     "podSelector": {"matchLabels": {"app": src["metadata"]["name"]}}}],
                                     "ports": [{"port": 8080}]}]}})
        else:
            relabelled = copy.deepcopy(src)
            relabelled["spec"]["template"]["metadata"]["labels"]["tier"] = "api"
            out.append(relabelled)
    return out


def bench_what_if(engine: PolicyEngine, state, count: int, seed: int) -> dict[str, tuple[float, int, int]]:
    """kind -> (seconds, candidates, pairs opened) for what_if + trace of one pair + newly_allowed."""
    cands = candidates(engine, state, count, seed)
    pods = [s for s in engine.inventory.subjects() if s.kind == "pod"]
    rng = random.Random(seed)
    out: dict[str, list] = {}
    for obj in cands:
        t0 = time.perf_counter()
        view = engine.what_if(upserts=[obj])
        src, dst = rng.sample(pods, 2)
        view.trace(src.id, dst.id, 8080)
        opened = len(view.newly_allowed())
        spent = time.perf_counter() - t0
        entry = out.setdefault(obj["kind"], [0.0, 0, 0])
        entry[0] += spent
        entry[1] += 1
        entry[2] += opened
    return {kind: tuple(v) for kind, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--candidates", type=int, default=30)
    a = ap.parse_args()
    t0 = time.perf_counter()
    state = synthetic_cluster.state()
    print(f"synthetic cluster: {state.counts()} (made in {time.perf_counter() - t0:.2f} s)")
    engine_s, graph_s, medians, p99s, rates, what_ifs = [], [], [], [], [], []
    for run in range(a.runs):
        e_s, g_s, engine, graph = bench_build(state)
        engine_s.append(e_s)
        graph_s.append(g_s)
        times = bench_trace(engine, a.queries, seed=run)
        medians.append(statistics.median(times))
        p99s.append(percentile(times, 0.99))
        batch = bench_trace(engine, a.queries, seed=run + 100, nearest=False)
        rates.append(len(batch) / sum(batch))
        what_ifs.append(bench_what_if(engine, state, a.candidates, seed=run))
    stats = graph.stats()
    build = statistics.median(e + g for e, g in zip(engine_s, graph_s, strict=True))
    print(f"graph: {stats['nodes.subject']} subjects, {stats['nodes.rule']} rules, "
          f"{sum(v for k, v in stats.items() if k.startswith('edges.'))} edges")
    print(f"build        {build:.2f} s (engine {statistics.median(engine_s):.2f} s + graph "
          f"{statistics.median(graph_s):.2f} s)   target < 5 s: {'ok' if build < 5 else 'MISSED'}")
    median = statistics.median(medians)
    print(f"trace        median {median * 1e3:.3f} ms, p99 {statistics.median(p99s) * 1e3:.3f} ms   "
          f"target median < 2 ms: {'ok' if median < 0.002 else 'MISSED'}")
    print(f"batch        {statistics.median(rates):,.0f} traces/s")
    total = statistics.median(sum(v[0] for v in run.values()) for run in what_ifs)
    print(f"what-if      {a.candidates} candidates in {total * 1e3:.0f} ms   target < 200 ms: "
          f"{'ok' if total < 0.2 else 'MISSED'}")
    labels = {"NetworkPolicy": "a new NetworkPolicy", "Deployment": "a relabelled pod template (tier=api)"}
    for kind in sorted(what_ifs[0]):
        each = statistics.median(run[kind][0] / run[kind][1] for run in what_ifs)
        opened = statistics.median(run[kind][2] / run[kind][1] for run in what_ifs)
        print(f"               {labels.get(kind, kind)}: {each * 1e3:.1f} ms each, opening {opened:.1f} pairs")


if __name__ == "__main__":
    main()
