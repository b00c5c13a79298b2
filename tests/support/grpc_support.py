"""Helpers for the gRPC tests: recordings made by our own code (no ../shared needed) and a replay server
running in a thread of its own, for clients that block (the CLI in a subprocess, iterate_blocking)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import orjson

from hubbletui.flows.recording import read_events
from hubbletui.flows.timefmt import format_rfc3339_ns
from hubbletui.server.playlist import Playlist
from hubbletui.server.replay import ReplayServer

T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z


def flow_line(t_ns: int, *, src=("shop", "web-1"), dst=("db", "postgres-0"), port=5432, verdict="FORWARDED",
              node="kind-worker", uuid: str | None = None, sport: int = 40000) -> dict:
    """One jsonpb GetFlowsResponse with a TCP flow, shaped as Hubble writes it."""
    dropped = verdict == "DROPPED"
    flow = {
        "time": format_rfc3339_ns(t_ns), "verdict": verdict,
        "IP": {"source": "10.0.1.5", "destination": "10.0.2.7", "ipVersion": "IPv4"},
        "l4": {"TCP": {"source_port": sport, "destination_port": port, "flags": {"SYN": True}}},
        "source": {"identity": 1001, "namespace": src[0], "labels": [f"k8s:app={src[1].split('-')[0]}"],
                   "pod_name": src[1]},
        "destination": {"identity": 1002, "namespace": dst[0], "labels": [f"k8s:app={dst[1].split('-')[0]}"],
                        "pod_name": dst[1]},
        "Type": "L3_L4", "node_name": node, "event_type": {"type": 1 if dropped else 4},
        "traffic_direction": "INGRESS", "is_reply": False,
        "ethernet": {"source": "aa:bb:cc:dd:ee:01", "destination": "aa:bb:cc:dd:ee:02"},
        "Summary": "TCP Flags: SYN",
    }
    if dropped:
        flow["drop_reason_desc"] = "POLICY_DENIED"
        flow["drop_reason"] = 133
    if uuid:
        flow["uuid"] = uuid
    return {"flow": flow, "node_name": node, "time": format_rfc3339_ns(t_ns)}


def mixed_lines(count: int, gap_ns: int = 10_000_000) -> list[dict]:
    """``count`` flows on two nodes: every third dropped, ports 5432 and 8080 alternating, 10 ms apart."""
    lines = []
    for i in range(count):
        lines.append(flow_line(T0 + i * gap_ns, verdict="DROPPED" if i % 3 == 0 else "FORWARDED",
                               port=5432 if i % 2 == 0 else 8080, node=f"kind-worker{1 + i % 2}",
                               sport=40000 + i, src=("shop", "web-1") if i % 4 else ("shop", "cart-2")))
    return lines


def write_recording(path: Path, lines: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def playlist_of(lines: list[dict], tmp_path: Path, name: str = "rec.json") -> Playlist:
    return Playlist.from_events(read_events(write_recording(tmp_path / name, lines)), name)


def flow_key(event) -> tuple:
    """What tells the test's flows apart: their time and source port (unique per generated flow)."""
    return event.time_ns, event.src_port


class ServerThread:
    """A ReplayServer on its own event loop in a thread; ``restart`` brings it back on the same port."""

    def __init__(self, playlist: Playlist, **options):
        self.playlist = playlist
        self.options = options
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: ReplayServer | None = None
        self.address = ""

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def start(self, listen: str = "127.0.0.1:0") -> str:
        if not self.thread.is_alive():
            self.thread.start()
        self.server = ReplayServer(self.playlist, listen=listen, **self.options)
        self.address = self._run(self.server.start())
        return self.address

    def stop(self) -> None:
        if self.server is not None:
            self._run(self.server.stop(None))
            self.server = None

    def restart(self) -> str:
        self.stop()
        return self.start(self.address)

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class ScriptedObserver:
    """A bare Observer whose GetFlows is a test's script ``script(request, call_number)`` yielding bytes: for
    servers that misbehave (garbage, streams that end, filters ignored). Records every request it gets."""

    def __init__(self, script):
        self.script = script
        self.requests: list = []
        self.address = ""
        self._server = None

    async def _get_flows(self, request, context):
        self.requests.append(request)
        async for payload in self.script(request, len(self.requests)):
            yield payload

    async def __aenter__(self) -> ScriptedObserver:
        import grpc

        from hubbletui.proto.observer import observer_pb2

        self._server = grpc.aio.server()
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("observer.Observer", {
            "GetFlows": grpc.unary_stream_rpc_method_handler(
                self._get_flows, request_deserializer=observer_pb2.GetFlowsRequest.FromString)}),))
        port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        self.address = f"127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc) -> None:
        await self._server.stop(None)


def encoded(lines: list[dict]) -> list[bytes]:
    """The lines as serialized GetFlowsResponse messages, what a server streams."""
    from hubbletui.flows.decode import event_from_json
    from hubbletui.server.playlist import response_message

    return [response_message(event_from_json(line)).SerializeToString() for line in lines]


class SteppedClock:
    """Time that moves only when the pacer sleeps: the schedule is checked exactly, whatever the load."""

    def __init__(self):
        self.t = 100.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
