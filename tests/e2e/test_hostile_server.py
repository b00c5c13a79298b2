"""Hostile Hubble servers over loopback: messages that are not well-formed flows, oversized flows, stalls, and
resumes where older distinct flows arrive. The client reports, skips, keeps the rest, and never hangs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from paths import ROOT
from grpc_support import T0, ScriptedObserver, encoded, flow_line
from hubbletui.proto.observer import observer_pb2
from hubbletui.sources import dial
from hubbletui.sources.base import FAILED, SourceState
from hubbletui.sources.dial import DialOptions
from hubbletui.sources.grpc_client import MAX_FLOW_BYTES, GrpcSource, RetryPolicy
from hubbletui.flows.model import Flow
from hubbletui.flows.request import FlowQuery

FAST_RETRY = RetryPolicy(first_delay=0.02, max_delay=0.1, jitter=0.0)


class ScriptedThread:
    """A ScriptedObserver on a loop of its own thread, for clients in a subprocess."""

    def __init__(self, script):
        self.observer = ScriptedObserver(script)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ScriptedObserver:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.observer.__aenter__(), self.loop).result(10)
        return self.observer

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.observer.__aexit__(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hubbletui", *args], capture_output=True, timeout=timeout,
                          cwd=ROOT, env={**os.environ, "TZ": "UTC"})


def good(i: int) -> bytes:
    return encoded([flow_line(T0 + i * 1000, sport=40000 + i, uuid=f"u-{i}")])[0]


def with_uuid(payload: bytes, raw_uuid: bytes) -> bytes:
    """The message with its flow's uuid replaced by raw bytes (which need not be UTF-8)."""
    resp = observer_pb2.GetFlowsResponse.FromString(payload)
    resp.flow.uuid = "PLACEHOLDER-UUID"
    return resp.SerializeToString().replace(b"PLACEHOLDER-UUID", raw_uuid)


def bad_utf8() -> bytes:
    return with_uuid(good(1), b"\xff\xfe-not-utf8-\xc3")


def bad_time() -> bytes:
    resp = observer_pb2.GetFlowsResponse.FromString(good(3))
    resp.flow.time.seconds = 10**15  # year 31 million: out of Timestamp's range
    return resp.SerializeToString()


def big_flow(size: int, i: int) -> bytes:
    resp = observer_pb2.GetFlowsResponse.FromString(good(i))
    resp.flow.source_names.append("x" * size)
    return resp.SerializeToString()


def script_of(*payloads: bytes, then_stall: bool = False):
    async def script(request, call):
        for payload in payloads:
            yield payload
        if then_stall:
            await asyncio.Event().wait()
    return script


def test_malformed_messages_do_not_kill_record_or_observe(tmp_path):
    script = script_of(good(0), bad_utf8(), good(2), bad_time(), good(4))
    with ScriptedThread(script) as server:
        out = tmp_path / "rec.json"
        proc = cli("record", "--server", server.address, "--no-follow", "-o", str(out))
        assert proc.returncode == 0, proc.stderr.decode()
        assert [json.loads(x)["flow"]["uuid"] for x in out.read_bytes().splitlines()] == ["u-0", "u-2", "u-4"]
        assert b"2 malformed messages skipped" in proc.stderr and b"UTF-8" in proc.stderr
        for output in ("jsonpb", "compact", "table"):
            proc = cli("observe", "--server", server.address, "--all", "-o", output)
            assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr.decode()
            assert b"2 malformed messages skipped" in proc.stderr
            assert proc.stdout.count(b"\n") == (3 if output != "table" else 4)


def with_text(payload: bytes, put, raw: bytes) -> bytes:
    """The message with the text ``put(response, placeholder)`` sets replaced by raw bytes (not UTF-8)."""
    resp = observer_pb2.GetFlowsResponse.FromString(payload)
    put(resp, "PLACEHOLDER-TEXT")
    return resp.SerializeToString().replace(b"PLACEHOLDER-TEXT", raw)


def with_change(payload: bytes, change) -> bytes:
    resp = observer_pb2.GetFlowsResponse.FromString(payload)
    change(resp)
    return resp.SerializeToString()


def lost_with_time(seconds: int) -> bytes:
    resp = observer_pb2.GetFlowsResponse(node_name="kind-worker")
    resp.lost_events.num_events_lost = 3
    resp.lost_events.first.seconds = seconds
    return resp.SerializeToString()


NOT_UTF8 = b"\xff\xfe-not-utf8-\xc3"
HOSTILE_MESSAGES = {
    # fields no output of ours reads, but JSON output would write
    "utf8 in Summary": with_text(good(1), lambda r, v: setattr(r.flow, "Summary", v), NOT_UTF8),
    "utf8 in ethernet": with_text(good(1), lambda r, v: setattr(r.flow.ethernet, "source", v), NOT_UTF8),
    "utf8 in a label": with_text(good(1), lambda r, v: r.flow.source.labels.append(v), NOT_UTF8),
    "response time": with_change(good(1), lambda r: setattr(r.time, "seconds", 10**15)),
    "flow nanos": with_change(good(1), lambda r: setattr(r.flow.time, "nanos", -5)),
    "lost events time": lost_with_time(-10**12),
}


@pytest.mark.parametrize("name", HOSTILE_MESSAGES)
def test_each_malformed_message_is_counted_with_the_server_named_and_skipped(tmp_path, name):
    with ScriptedThread(script_of(good(0), HOSTILE_MESSAGES[name], good(2))) as server:
        out = tmp_path / "rec.json"
        proc = cli("record", "--server", server.address, "--no-follow", "-o", str(out))
        assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr.decode()
        assert [json.loads(x)["flow"]["uuid"] for x in out.read_bytes().splitlines()] == ["u-0", "u-2"]
        assert f"{server.address}: 1 malformed messages skipped".encode() in proc.stderr
        proc = cli("observe", "--server", server.address, "--all", "-o", "jsonpb")
        assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr.decode()
        assert proc.stdout.count(b"\n") == 2 and b"1 malformed messages skipped" in proc.stderr


def test_a_flow_over_4_mib_arrives_and_one_over_the_limit_is_skipped(tmp_path):
    script = script_of(good(0), big_flow(5 << 20, 1), good(2), big_flow(MAX_FLOW_BYTES + 1, 3), good(4))
    with ScriptedThread(script) as server:
        out = tmp_path / "rec.json"
        start = time.monotonic()
        proc = cli("record", "--server", server.address, "--no-follow", "-o", str(out))
        assert proc.returncode == 0, proc.stderr.decode()
        assert time.monotonic() - start < 20 and len(server.requests) == 1  # no reconnect loop
        uuids = [json.loads(x)["flow"]["uuid"] for x in out.read_bytes().splitlines()]
        assert uuids == ["u-0", "u-1", "u-2", "u-4"]
        assert b"1 malformed messages skipped, 1 of them over 16 MiB" in proc.stderr


async def test_a_message_over_the_receive_limit_twice_at_the_same_point_ends_the_stream(monkeypatch):
    # the real limit (256 MiB) made small, so that the test need not build a 256 MiB message
    monkeypatch.setattr(dial, "CHANNEL_OPTIONS",
                        tuple(o for o in dial.CHANNEL_OPTIONS if o[0] != "grpc.max_receive_message_length")
                        + (("grpc.max_receive_message_length", 1 << 20),))
    script = script_of(good(0), big_flow(2 << 20, 1), good(2))
    async with ScriptedObserver(script) as server:
        source = GrpcSource(DialOptions(server=server.address), FlowQuery(follow=True), retry=FAST_RETRY)
        flows, states = [], []
        async for item in source.events():
            (states if isinstance(item, SourceState) else flows).append(item)
            if len(states) > 50:
                break
    assert states[-1].state == FAILED and "cannot get past it" in states[-1].detail
    assert "RESOURCE_EXHAUSTED" in states[-1].detail
    assert len(server.requests) == 2 and [f.src_port for f in flows] == [40000]


async def test_after_a_resume_older_distinct_flows_are_kept_and_repeats_dropped():
    # a relay merging nodes: after the break, a late node's flow older than the resume point comes
    payloads = {i: good(i) for i in range(8)}
    late = encoded([flow_line(T0 + 2 * 1000 + 500, sport=49999, uuid="late-node")])[0]

    async def script(request, call):
        if call == 1:
            for i in range(5):
                yield payloads[i]
            return
        for payload in (payloads[3], late, payloads[4], payloads[5], payloads[6]):
            yield payload  # 3 and 4 again (older than / at the boundary), the late one, then new ones
        await asyncio.Event().wait()

    async with ScriptedObserver(script) as server:
        source = GrpcSource(DialOptions(server=server.address), FlowQuery(follow=True), retry=FAST_RETRY)
        flows = []
        async for item in source.events():
            if isinstance(item, Flow):
                flows.append(item)
                if len(flows) == 8:
                    break
    assert [f.src_port for f in flows] == [40000, 40001, 40002, 40003, 40004, 49999, 40005, 40006]
    assert source.stats.duplicates_dropped == 2


@pytest.mark.parametrize("command", ["observe", "record"])
def test_one_shot_commands_give_up_on_a_stalled_server(tmp_path, command):
    with ScriptedThread(script_of(good(0), good(1), then_stall=True)) as server:
        args = ["observe", "--all", "-o", "jsonpb"] if command == "observe" else \
            ["record", "--no-follow", "-o", str(tmp_path / "rec.json")]
        start = time.monotonic()
        proc = cli(*args, "--server", server.address, "--stall-timeout", "1.5")
        elapsed = time.monotonic() - start
    assert proc.returncode == 1 and b"Traceback" not in proc.stderr, proc.stderr.decode()
    assert b"sent nothing for 1.5 s: the server stalled" in proc.stderr
    assert elapsed < 15
    written = proc.stdout if command == "observe" else (tmp_path / "rec.json").read_bytes()
    assert written.count(b"\n") == 2  # what came before the stall is kept
