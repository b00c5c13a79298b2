"""Suggest latency on the synthetic cluster (benchmarks/synthetic_cluster.py: 5,000 pods, 500 workloads,
1,000 policies): one drop group, from its trace to its ranked fixes, every candidate checked.

    .venv/bin/python benchmarks/bench_suggest.py [--groups 40] [--observed 400] [--top 3] [--seed 7]

Drop groups are random pairs of workloads whose connection the engine denies by default deny (the kind of drop
a fix exists for); the input also holds --observed forwarded connections (random allowed pairs) that every
candidate must keep working. Prints:
  baseline     tracing the observed connections once (shared by every group of a run)
  per group    suggest_for_case with --top: median, p90, max, and how many candidates were checked
                                                                                  target: median < 200 ms
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import synthetic_cluster  # noqa: E402

from hubbletui.flows.decode import flow_from_dict  # noqa: E402
from hubbletui.policy.engine import PolicyEngine  # noqa: E402
from hubbletui.diagnose.groups import DropCase  # noqa: E402
from hubbletui.suggest.fixes import suggest_for_case  # noqa: E402
from hubbletui.suggest.observed import ObservedTraffic  # noqa: E402

PORTS = (8080, 8081, 8082, 9090, 5432)


def endpoint(subject) -> dict:
    return {"identity": 10000 + hash(subject.labels.key) % 50000, "namespace": subject.namespace,
            "labels": subject.labels.hubble_form(), "pod_name": subject.name,
            "workloads": [{"kind": subject.workload[0], "name": subject.workload[1]}] if subject.workload else []}


def flow(src, dst, port: int, verdict: str, t: int):
    f = {"verdict": verdict, "IP": {"source": src.ip, "destination": dst.ip, "ipVersion": "IPv4"},
         "l4": {"TCP": {"source_port": 40000 + t % 20000, "destination_port": port, "flags": {"SYN": True}}},
         "source": endpoint(src), "destination": endpoint(dst), "is_reply": False, "traffic_direction": "EGRESS"}
    if verdict == "DROPPED":
        f.update({"drop_reason": 133, "drop_reason_desc": "POLICY_DENIED"})
    return flow_from_dict(f, "bench", t)


def pick(engine: PolicyEngine, rng: random.Random, groups: int, observed: int):
    pods = [s for s in engine.inventory.subjects() if s.kind == "pod"]
    cases, working = [], []
    t = 0
    while len(cases) < groups or len(working) < observed:
        src, dst = rng.sample(pods, 2)
        port = rng.choice(PORTS)
        deciding = engine.trace(src, dst, port, "TCP").deciding_layer
        t += 1
        if deciding is None and len(working) < observed:
            working.append(flow(src, dst, port, "FORWARDED", t))
        elif deciding is not None and deciding.reason == "default-deny" and len(cases) < groups:
            drop = flow(src, dst, port, "DROPPED", t)
            cases.append(DropCase(src.workload_ref, dst.workload_ref, port, "TCP", "POLICY_DENIED", deciding.layer,
                                  1, ((drop.source, drop.destination),)))
    return cases, working


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", type=int, default=40)
    ap.add_argument("--observed", type=int, default=400)
    ap.add_argument("--top", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    t0 = time.perf_counter()
    engine = PolicyEngine(synthetic_cluster.state())
    print(f"cluster      {len(list(engine.inventory.subjects()))} subjects, {len(engine.policies)} policies "
          f"(built in {time.perf_counter() - t0:.2f} s)")
    cases, working = pick(engine, random.Random(a.seed), a.groups, a.observed)
    observed = ObservedTraffic(working)
    t0 = time.perf_counter()
    observed.baseline(engine)
    print(f"baseline     {len(observed)} observed connections traced in {(time.perf_counter() - t0) * 1000:.1f} ms "
          "(once per run)")
    times, fixes, kinds = [], 0, {}
    for case in cases:
        t0 = time.perf_counter()
        result = suggest_for_case(engine, case, observed, top=a.top)
        times.append(time.perf_counter() - t0)
        fixes += bool(result.suggestions)
        if result.suggestions:
            kinds[result.suggestions[0].kind] = kinds.get(result.suggestions[0].kind, 0) + 1
    ms = sorted(t * 1000 for t in times)
    median = statistics.median(ms)
    print(f"per group    median {median:.1f} ms, p90 {ms[int(0.9 * (len(ms) - 1))]:.1f} ms, max {ms[-1]:.1f} ms "
          f"over {len(ms)} groups (--top {a.top}); {fixes} with a fix; first fix kinds {kinds}")
    print(f"target       median < 200 ms: {'met' if median < 200 else 'NOT met'}")


if __name__ == "__main__":
    main()
