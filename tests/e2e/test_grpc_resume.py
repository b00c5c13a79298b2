"""A server killed and restarted mid-stream: the client resumes with no duplicate and no gap."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys

from paths import ROOT
from grpc_support import T0, flow_key, flow_line, playlist_of, write_recording
from hubbletui.flows.decode import event_from_json
from hubbletui.flows.model import Flow
from hubbletui.flows.request import FlowQuery
from hubbletui.server.replay import ReplayServer
from hubbletui.sources.base import RETRYING, SourceState
from hubbletui.sources.dial import DialOptions
from hubbletui.sources.grpc_client import GrpcSource, RetryPolicy
from hubbletui.sources.resume import ResumeTracker

FAST_RETRY = RetryPolicy(first_delay=0.05, max_delay=0.2, jitter=0.1)


def grouped_lines(count: int, group: int = 4, gap_ns: int = 5_000_000) -> list[dict]:
    """Flows in groups that share one nanosecond: a resume boundary usually falls inside a group."""
    return [flow_line(T0 + (i // group) * gap_ns, sport=40000 + i) for i in range(count)]


def test_tracker_drops_exactly_the_delivered_flows_of_the_boundary():
    lines = grouped_lines(8)  # times: 4 x t0, 4 x t1
    flows = [event_from_json(line) for line in lines]
    tracker = ResumeTracker()
    for flow in flows[:6]:  # delivered: the first group and half of the second
        tracker.delivered(flow)
    assert tracker.resume() == flows[4].time_ns and tracker.at_boundary == 2
    # the server sends the whole second group again (since is inclusive) and then newer flows
    resent = flows[4:]
    assert [tracker.is_repeat(f) for f in resent] == [True, True, False, False]
    assert tracker.is_repeat(flows[0])  # older than since: the server ignored it


def test_tracker_counts_identical_flows_as_a_multiset():
    twin = flow_line(T0, sport=40000)
    flows = [event_from_json(twin), event_from_json(twin)]  # Hubble may report one packet twice
    tracker = ResumeTracker()
    tracker.delivered(flows[0])  # the break came between the twins
    tracker.resume()
    assert [tracker.is_repeat(f) for f in flows] == [True, False]


async def stream_until(source: GrpcSource, count: int, on_flow=None, timeout: float = 20) -> list[Flow]:
    flows = []
    events = source.events()
    async with asyncio.timeout(timeout):
        async for item in events:
            if isinstance(item, Flow):
                flows.append(item)
                if on_flow is not None:
                    await on_flow(len(flows))
                if len(flows) == count:
                    break
    await events.aclose()
    return flows


async def test_restart_inside_a_group_of_equal_times_loses_and_repeats_nothing(tmp_path):
    lines = grouped_lines(24)  # groups of 4: flows 8..11 share a time
    first = ReplayServer(playlist_of(lines[:10], tmp_path, "first.json"), speed=None)  # dies inside that group
    address = await first.start()
    second = ReplayServer(playlist_of(lines, tmp_path, "all.json"), listen=address, speed=None)
    source = GrpcSource(DialOptions(server=address), FlowQuery(follow=True, number=100), retry=FAST_RETRY)

    async def on_flow(count):
        if count == 10:
            await first.stop(None)
            await second.start()

    try:
        flows = await stream_until(source, 24, on_flow)
    finally:
        await second.stop(None)
    assert [f.src_port for f in flows] == [40000 + i for i in range(24)]
    assert source.stats.duplicates_dropped == 2 and source.stats.reconnects == 1


async def test_paced_server_stopped_mid_stream_and_restarted(tmp_path):
    lines = grouped_lines(160)  # 40 groups 5 ms apart: 0.2 s at 1x
    playlist = playlist_of(lines, tmp_path)
    server = ReplayServer(playlist, speed=1)
    address = await server.start()
    # number: the history played before the client connected comes first, then the stream follows
    source = GrpcSource(DialOptions(server=address), FlowQuery(follow=True, number=1000), retry=FAST_RETRY)
    restarted = ReplayServer(playlist, listen=address, speed=1)  # same recording, played from its start again

    async def on_flow(count):
        if count == 50:
            await server.stop(None)
            await restarted.start()

    try:
        flows = await stream_until(source, 160, on_flow)
    finally:
        await server.stop(None)
        await restarted.stop(None)
    assert len({flow_key(f) for f in flows}) == len(flows) == 160
    assert [f.src_port for f in flows] == [40000 + i for i in range(160)]
    assert source.stats.reconnects == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(recording, port: int, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "hubbletui", "serve", str(recording), "--listen",
                             f"127.0.0.1:{port}", *args], stderr=subprocess.PIPE, cwd=ROOT,
                            env={**os.environ, "TZ": "UTC"})
    line = proc.stderr.readline().decode()
    assert re.search(rf"serving \d+ flows .* on 127\.0\.0\.1:{port}", line), line
    return proc


async def test_serve_process_killed_with_sigkill_and_started_again(tmp_path):
    recording = write_recording(tmp_path / "rec.json", grouped_lines(300, gap_ns=10_000_000))  # 0.75 s at 1x
    port = _free_port()
    server = _serve(recording, port, "--speed", "1")
    source = GrpcSource(DialOptions(server=f"127.0.0.1:{port}"), FlowQuery(follow=True, number=1000),
                        retry=FAST_RETRY)
    processes = [server]
    states = []

    async def on_flow(count):
        if count == 60:
            os.kill(server.pid, signal.SIGKILL)
            server.wait()
            processes.append(await asyncio.to_thread(_serve, recording, port, "--speed", "1"))

    try:
        events = source.events()
        flows = []
        async with asyncio.timeout(30):
            async for item in events:
                if isinstance(item, SourceState):
                    states.append(item.state)
                elif isinstance(item, Flow):
                    flows.append(item)
                    await on_flow(len(flows))
                    if len(flows) == 300:
                        break
        await events.aclose()
    finally:
        for proc in processes:
            proc.kill()
            proc.wait()
    assert [f.src_port for f in flows] == [40000 + i for i in range(300)]
    assert RETRYING in states and source.stats.reconnects >= 1
