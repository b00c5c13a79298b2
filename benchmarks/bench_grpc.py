"""Flows/s through our replay server -> loopback gRPC -> our GrpcSource -> Flow, beside grpcio's own ceiling.

    .venv/bin/python benchmarks/bench_grpc.py [--flows 20000] [--runs 5]
    .venv/bin/python benchmarks/bench_grpc.py --vs-hubble [--flows 50000] [--runs 3] [--compact-lines 200000]

--vs-hubble sets us beside the real hubble CLI (../shared/hubble/hubble), each as a whole process the way a
person runs it, against one `hubbletui serve --no-pacing` of the same recording: live
`observe --server --all -o jsonpb`, `record` (against `hubble observe -o jsonpb --all > file`), and
`observe -o compact` of a recording file. Medians of the runs, flows/s side by side. Goals (issue 14): live
and record at least 1x hubble's rate, compact at least 2x.

The ceiling is a bare grpcio server streaming the same serialized messages (one flow per message, as Hubble
streams them) to a bare client that only receives them through the generated stub, with the asyncio API and
the blocking one (the faster counts). Servers run in their own processes, as a relay would; clients run
here. Runs alternate between the two so that load from elsewhere hits both; medians are printed.
Target: ours >= 70% of the ceiling.

Also printed: how much smaller the field-masked flows of compact/table output are than full ones.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

from hubbletui.sources import dial  # noqa: F401, I001  (quiets gRPC's C core before grpc loads)
import grpc
import orjson
from google.protobuf.field_mask_pb2 import FieldMask

from hubbletui.flows.decode import event_from_json
from hubbletui.flows.model import Flow
from hubbletui.flows.request import FlowQuery
from hubbletui.flows.timefmt import format_rfc3339_ns
from hubbletui.proto.flow import flow_pb2
from hubbletui.proto.observer import observer_pb2, observer_pb2_grpc
from hubbletui.server.playlist import Playlist, response_message
from hubbletui.server.replay import ReplayServer
from hubbletui.sources.dial import DialOptions
from hubbletui.sources.grpc_client import DISPLAY_FIELD_MASK, GrpcSource

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "flows"
TARGET = 0.70


def flow_lines(count: int) -> list[dict]:
    """``count`` jsonpb flow lines: the samples (or lines made here) repeated, 100 us apart in time."""
    base = []
    if SAMPLES.is_dir():
        base = [orjson.loads(line) for path in sorted(SAMPLES.glob("hubble-otel*")) for line in
                path.read_bytes().splitlines() if line.strip()]
        base = [b for b in base if "flow" in b]
    if not base:
        sys.path.insert(0, str(Path(__file__).parent))
        from bench_decode import _made_line

        base = [_made_line(i) for i in range(400)]
    start = 1_700_000_000_000_000_000
    out = []
    for i in range(count):
        line = dict(base[i % len(base)])
        stamp = format_rfc3339_ns(start + i * 100_000)
        line["flow"] = {**line["flow"], "time": stamp}
        line["time"] = stamp
        out.append(line)
    return out


# ---------------------------------------------------------------------------------------------------------
# servers (each in its own process)


async def serve_ours(count: int) -> None:
    events = [event_from_json(line) for line in flow_lines(count)]
    server = ReplayServer(Playlist.from_events(events, "bench"), speed=None)
    await server.start()
    print(f"ready {server.address}", flush=True)
    await server.wait()


async def serve_bare(count: int) -> None:
    payloads = [response_message(event_from_json(line)).SerializeToString() for line in flow_lines(count)]

    async def get_flows(request, context):
        for payload in payloads:
            yield payload

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("observer.Observer", {
        "GetFlows": grpc.unary_stream_rpc_method_handler(
            get_flows, request_deserializer=observer_pb2.GetFlowsRequest.FromString)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"ready 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


def start_server(kind: str, count: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--flows", str(count)],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("ready "):
        proc.kill()
        raise SystemExit(f"the {kind} server did not start: {line!r}")
    return proc, line.split()[1]


# ---------------------------------------------------------------------------------------------------------
# clients (here)


async def ours(address: str, count: int) -> float:
    source = GrpcSource(DialOptions(server=address), FlowQuery())
    start = time.perf_counter()
    flows = 0
    async for event in source.events():
        if type(event) is Flow:
            flows += 1
    elapsed = time.perf_counter() - start
    assert flows == count, flows
    return flows / elapsed


async def bare_aio(address: str, count: int) -> float:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = observer_pb2_grpc.ObserverStub(channel)
        start = time.perf_counter()
        received = 0
        async for _ in stub.GetFlows(observer_pb2.GetFlowsRequest()):
            received += 1
        elapsed = time.perf_counter() - start
    assert received == count, received
    return received / elapsed


def bare_sync(address: str, count: int) -> float:
    with grpc.insecure_channel(address) as channel:
        stub = observer_pb2_grpc.ObserverStub(channel)
        start = time.perf_counter()
        received = sum(1 for _ in stub.GetFlows(observer_pb2.GetFlowsRequest()))
        elapsed = time.perf_counter() - start
    assert received == count, received
    return received / elapsed


def mask_savings(lines: list[dict]) -> tuple[float, float]:
    mask = FieldMask(paths=list(DISPLAY_FIELD_MASK))
    full = masked = 0
    for line in lines:
        message = response_message(event_from_json(line))
        full += message.ByteSize()
        kept = flow_pb2.Flow()
        mask.MergeMessage(message.flow, kept)
        message.flow.CopyFrom(kept)
        masked += message.ByteSize()
    return full / len(lines), masked / len(lines)


HUBBLE = Path(__file__).resolve().parents[2] / "shared" / "hubble" / "hubble"


def write_recording(path: Path, count: int) -> Path:
    with open(path, "wb") as fh:
        for line in flow_lines(count):
            fh.write(orjson.dumps(line) + b"\n")
    return path


def timed(argv: list[str], stdout=subprocess.DEVNULL) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=stdout, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def vs_hubble(flows: int, runs: int, compact_lines: int) -> int:
    import tempfile

    if not HUBBLE.exists():
        raise SystemExit(f"the real hubble CLI is not at {HUBBLE}")
    ours = [sys.executable, "-m", "hubbletui"]
    with tempfile.TemporaryDirectory() as tmp:
        live_file = write_recording(Path(tmp) / "live.jsonl", flows)
        proc = subprocess.Popen([*ours, "serve", str(live_file), "--no-pacing", "--listen", "127.0.0.1:0"],
                                stderr=subprocess.PIPE, text=True)
        banner = proc.stderr.readline()
        address = banner.split(" on ")[1].split()[0]
        times: dict[str, list[float]] = {k: [] for k in ("hubble live", "ours live", "hubble record",
                                                          "ours record", "hubble compact", "ours compact")}
        try:
            out = Path(tmp) / "out.jsonl"
            for _ in range(runs):  # alternating, so that load from elsewhere hits both
                live = ["--server", address, "--all", "-o", "jsonpb"]
                times["hubble live"].append(flows / timed([str(HUBBLE), "observe", *live]))
                times["ours live"].append(flows / timed([*ours, "observe", *live]))
                with open(out, "wb") as fh:
                    times["hubble record"].append(flows / timed([str(HUBBLE), "observe", *live], stdout=fh))
                out.unlink()
                times["ours record"].append(flows / timed([*ours, "record", "--server", address, "--no-follow",
                                                          "-o", str(out)]))
                out.unlink()
        finally:
            proc.kill()
            proc.wait()
        big = write_recording(Path(tmp) / "big.jsonl", compact_lines)
        for _ in range(runs):
            times["hubble compact"].append(compact_lines / timed(
                [str(HUBBLE), "observe", "--input-file", str(big), "--all", "-o", "compact"]))
            times["ours compact"].append(compact_lines / timed(
                [*ours, "observe", "--input-file", str(big), "-o", "compact"]))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{flows:,} flows live, {compact_lines:,} lines for compact, {runs} runs, median flows/s")
    ok = True
    for what, goal in (("live", 1.0), ("record", 1.0), ("compact", 2.0)):
        ratio = med[f"ours {what}"] / med[f"hubble {what}"]
        ok &= ratio >= goal
        print(f"  {what:8} ours {med[f'ours {what}']:>9,.0f}/s   hubble {med[f'hubble {what}']:>9,.0f}/s   "
              f"ours/hubble {ratio:.2f} (goal >= {goal:g})   runs ours "
              f"{', '.join(f'{r:,.0f}' for r in times[f'ours {what}'])}")
    print("goals met" if ok else "MISSED")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flows", type=int, default=None, help="flows per run (20,000; 50,000 with --vs-hubble)")
    parser.add_argument("--runs", type=int, default=None, help="runs (5; 3 with --vs-hubble)")
    parser.add_argument("--vs-hubble", action="store_true", help="beside the real hubble CLI (see above)")
    parser.add_argument("--compact-lines", type=int, default=200_000)
    parser.add_argument("--serve", choices=["ours", "bare"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.vs_hubble:
        return vs_hubble(args.flows or 50_000, args.runs or 3, args.compact_lines)
    args.flows = args.flows or 20_000
    args.runs = args.runs or 5
    if args.serve:
        asyncio.run(serve_ours(args.flows) if args.serve == "ours" else serve_bare(args.flows))
        return 0

    our_server, our_address = start_server("ours", args.flows)
    bare_server, bare_address = start_server("bare", args.flows)
    # the greeting (NODE_CONNECTED) is not a flow: our server sends one more message than the bare one
    results: dict[str, list[float]] = {"ours": [], "bare aio": [], "bare sync": []}
    try:
        asyncio.run(ours(our_address, args.flows))  # warm-up: imports, first connections
        for _ in range(args.runs):
            results["ours"].append(asyncio.run(ours(our_address, args.flows)))
            results["bare aio"].append(asyncio.run(bare_aio(bare_address, args.flows)))
            results["bare sync"].append(bare_sync(bare_address, args.flows))
    finally:
        for proc in (our_server, bare_server):
            proc.kill()
            proc.wait()
    med = {k: statistics.median(v) for k, v in results.items()}
    ceiling_name = max(("bare aio", "bare sync"), key=med.get)
    ratio = med["ours"] / med[ceiling_name]
    # the same comparison round by round (each round's runs follow each other closely), less swayed by load
    # that comes and goes on a shared machine
    paired = statistics.median(o / max(a, b) for o, a, b in zip(results["ours"], results["bare aio"],
                                                                   results["bare sync"]))
    print(f"{args.flows:,} flows per run, {args.runs} runs, median flows/s "
          f"(flow samples from {SAMPLES if SAMPLES.is_dir() else 'this script'})")
    for name in results:
        spread = ", ".join(f"{r:,.0f}" for r in results[name])
        print(f"  {name:10} {med[name]:>9,.0f}/s   (runs: {spread})")
    print(f"ours / ceiling ({ceiling_name}): {ratio:.0%} (target >= {TARGET:.0%}); "
          f"median of per-round ratios against that round's faster bare client: {paired:.0%}")
    full, masked = mask_savings(flow_lines(2000))
    print(f"a full flow is {full:,.0f} bytes on the wire, the compact/table field mask keeps {masked:,.0f} "
          f"({masked / full:.0%})")
    print("target met" if ratio >= TARGET else "MISSED")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
