"""Decoding speed: jsonpb lines and protobuf messages to Flow, beside what the parsing alone costs.

    .venv/bin/python benchmarks/bench_decode.py [--runs 7] [--lines 50000]

Four paths over the same flows, each timed several times (median printed):
  json       event_from_line: orjson.loads + camelCase check + event_from_json, as RecordingReader does
  json floor orjson.loads alone on the same lines
  proto      GetFlowsResponse.FromString + event_from_proto (what the gRPC client does per message)
  proto floor GetFlowsResponse.FromString alone
and the two decoding paths again while a store of 100,000 decoded flows is alive (a deque, as the TUI's
store keeps them), which is where the garbage collector's full passes start to show.

Targets: json >= 40% of its floor; proto >= 25% of its floor and > 100,000 flows/s; each <= 20% slower with
the store full. Flows come from ../shared/samples/flows when present, else from lines made here.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import deque
from pathlib import Path

import orjson

from hubbletui.flows.decode import event_from_bytes, event_from_json, event_from_line
from hubbletui.flows.timefmt import format_rfc3339_ns
from hubbletui.proto.observer import observer_pb2
from hubbletui.server.playlist import response_message

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "flows"
STORE_SIZE = 100_000
TARGETS = {"json": 0.40, "proto": 0.25}
PROTO_MIN_RATE = 100_000
STORE_MAX_SLOWDOWN = 0.20


def sample_lines() -> tuple[list[bytes], str]:
    if SAMPLES.is_dir():
        lines = [line for path in sorted(SAMPLES.iterdir()) if path.is_file()
                 for line in path.read_bytes().splitlines() if line.strip()]
        if lines:
            return lines, f"{len(lines)} sample lines from {SAMPLES}"
    print(f"note: {SAMPLES} is absent; using flows made by this script", file=sys.stderr)
    return [orjson.dumps(_made_line(i)) for i in range(400)], "400 lines made by this script"


def _made_line(i: int) -> dict:
    t = format_rfc3339_ns(1_700_000_000_000_000_000 + i * 1_000_000)
    return {"flow": {
        "time": t, "verdict": "DROPPED" if i % 3 == 0 else "FORWARDED",
        "IP": {"source": f"10.0.{i % 250}.5", "destination": "10.0.2.7", "ipVersion": "IPv4"},
        "l4": {"TCP": {"source_port": 30000 + i, "destination_port": 5432, "flags": {"SYN": True}}},
        "source": {"ID": 12, "identity": 1001, "namespace": "shop", "pod_name": f"web-{i % 7}",
                   "labels": ["k8s:app=web", "k8s:io.kubernetes.pod.namespace=shop",
                              "k8s:io.cilium.k8s.policy.serviceaccount=web"],
                   "workloads": [{"name": "web", "kind": "Deployment"}]},
        "destination": {"ID": 40, "identity": 1002, "namespace": "db", "pod_name": "postgres-0",
                        "labels": ["k8s:app=postgres", "k8s:io.kubernetes.pod.namespace=db"]},
        "Type": "L3_L4", "node_name": "kind-worker", "event_type": {"type": 4, "sub_type": 3},
        "traffic_direction": "INGRESS", "trace_observation_point": "TO_ENDPOINT", "is_reply": False,
        "Summary": "TCP Flags: SYN"}, "node_name": "kind-worker", "time": t}


def decode_json(lines, keep) -> None:
    for line in lines:
        keep(event_from_line(line))  # orjson.loads + camelCase check + event_from_json, as RecordingReader does


def floor_json(lines, keep) -> None:
    for line in lines:
        keep(orjson.loads(line))


def decode_proto(blobs, keep) -> None:
    for blob in blobs:
        keep(event_from_bytes(blob))  # ParseFromString + event_from_proto, as the gRPC client does


def floor_proto(blobs, keep) -> None:
    for blob in blobs:
        message = observer_pb2.GetFlowsResponse()
        message.ParseFromString(blob)
        keep(message)


def rate(fn, data, keep) -> float:
    start = time.perf_counter()
    fn(data, keep)
    return len(data) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--lines", type=int, default=50_000, help="flows per timed run")
    args = parser.parse_args()

    base, origin = sample_lines()
    lines = [base[i % len(base)] for i in range(args.lines)]
    blobs = [response_message(event_from_json(orjson.loads(line))).SerializeToString() for line in lines]
    print(f"{args.lines:,} flows per run ({origin}), {args.runs} runs, median flows/s")

    store: deque = deque(maxlen=STORE_SIZE)
    filler = [event_from_bytes(b) for b in blobs[:1000]]
    plain: dict[str, list[float]] = {k: [] for k in ("json", "json floor", "proto", "proto floor",
                                                     "json + store", "proto + store")}
    discard = deque(maxlen=1).append  # results die at once, as in a stream nobody keeps
    for _ in range(args.runs):
        plain["json"].append(rate(decode_json, lines, discard))
        plain["json floor"].append(rate(floor_json, lines, discard))
        plain["proto"].append(rate(decode_proto, blobs, discard))
        plain["proto floor"].append(rate(floor_proto, blobs, discard))
        # a full store: 100,000 distinct decoded flows alive, and every new one replaces the oldest
        store.clear()
        store.extend(f._replace(time_ns=f.time_ns + i) for i, f in
                     ((i, filler[i % len(filler)]) for i in range(STORE_SIZE)))
        plain["json + store"].append(rate(decode_json, lines, store.append))
        plain["proto + store"].append(rate(decode_proto, blobs, store.append))
    med = {k: statistics.median(v) for k, v in plain.items()}

    failures = []
    for path in ("json", "proto"):
        ratio = med[path] / med[f"{path} floor"]
        slowdown = 1 - med[f"{path} + store"] / med[path]
        print(f"{path:6} {med[path]:>10,.0f}/s   floor {med[path + ' floor']:>10,.0f}/s   ratio {ratio:5.1%} "
              f"(target >= {TARGETS[path]:.0%})   with store {med[path + ' + store']:>10,.0f}/s "
              f"({slowdown:+.1%} slower; target <= {STORE_MAX_SLOWDOWN:.0%})")
        if ratio < TARGETS[path]:
            failures.append(f"{path} ratio {ratio:.1%} < {TARGETS[path]:.0%}")
        if slowdown > STORE_MAX_SLOWDOWN:
            failures.append(f"{path} {slowdown:.1%} slower with the store full")
    if med["proto"] <= PROTO_MIN_RATE:
        failures.append(f"proto {med['proto']:,.0f}/s <= {PROTO_MIN_RATE:,}/s")
    print("targets met" if not failures else "MISSED: " + "; ".join(failures))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
