"""GrpcSource against real loopback servers: ours, and scripted ones that misbehave."""

from __future__ import annotations

import asyncio
import random
import socket

import pytest

from grpc_support import (T0, ScriptedObserver, ServerThread, encoded, flow_key, flow_line, mixed_lines,
                          playlist_of)
from hubbletui.errors import HubbleTuiError, UnreachableError
from hubbletui.flows.model import Flow, LostEvents, NodeStatus
from hubbletui.flows.recording import read_events
from hubbletui.flows.request import FilterSpec, FlowQuery, build_filters
from hubbletui.flows.select import select
from hubbletui.proto.observer import observer_pb2
from hubbletui.proto.relay import relay_pb2
from hubbletui.server.replay import ReplayServer
from hubbletui.sources.base import CONNECTING, ENDED, FAILED, RETRYING, STREAMING, SourceState
from hubbletui.sources.dial import DialOptions
from hubbletui.cli.flow_options import ServerFlags
from hubbletui.cli.server_source import server_events
from hubbletui.sources.grpc_client import DISPLAY_FIELD_MASK, GrpcSource, RetryPolicy

FAST_RETRY = RetryPolicy(first_delay=0.02, max_delay=0.1, jitter=0.0)


async def collect(source: GrpcSource, *, stop_after_flows: int | None = None, timeout: float = 10):
    """(flows, other events, states) until the source ends or ``stop_after_flows`` arrived."""
    flows, others, states = [], [], []

    async def run():
        events = source.events()
        async for item in events:
            if isinstance(item, SourceState):
                states.append(item)
            elif isinstance(item, Flow):
                flows.append(item)
                if stop_after_flows is not None and len(flows) >= stop_after_flows:
                    break
            else:
                others.append(item)
        await events.aclose()

    await asyncio.wait_for(run(), timeout)
    return flows, others, states


def query(**spec) -> FlowQuery:
    whitelist, blacklist = build_filters(FilterSpec(**spec))
    return FlowQuery(whitelist=whitelist, blacklist=blacklist)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_end_to_end_with_filters_matches_file_mode(tmp_path):
    lines = mixed_lines(90)
    recording = tmp_path / "rec.json"
    playlist = playlist_of(lines, tmp_path, "rec.json")
    q = query(verdict=("DROPPED",), to_port=("5432",))
    async with ReplayServer(playlist, speed=None) as server:
        source = GrpcSource(DialOptions(server=server.address), q)
        flows, others, states = await collect(source)
    expected = [e for e in select(read_events(recording), q) if isinstance(e, Flow)]
    assert [flow_key(f) for f in flows] == [flow_key(f) for f in expected] and len(flows) == 15
    assert [s.state for s in states] == [CONNECTING, STREAMING, ENDED]
    assert [type(e) for e in others] == [NodeStatus]
    assert source.stats.flows == 15 and source.stats.node_events == 1


async def test_filters_are_sent_and_checked_again_client_side(tmp_path):
    payloads = encoded(mixed_lines(30))

    async def ignores_filters(request, call):  # an older server that skipped the filter fields
        for payload in payloads:
            yield payload

    async with ScriptedObserver(ignores_filters) as server:
        q = query(verdict=("DROPPED",))
        q.field_mask = DISPLAY_FIELD_MASK
        flows, _, _ = await collect(GrpcSource(DialOptions(server=server.address), q))
    sent = server.requests[0]
    assert [list(f.verdict) for f in sent.whitelist] == [[2]]  # DROPPED
    assert list(sent.field_mask.paths) == list(DISPLAY_FIELD_MASK)
    assert sent.number == 2**64 - 1 and not sent.follow  # a one-shot request for everything, as `--all`
    assert len(flows) == 10 and all(f.verdict == "DROPPED" for f in flows)


async def test_status_events_are_surfaced_and_counted(tmp_path):
    unavailable = observer_pb2.GetFlowsResponse(node_name="relay", node_status=relay_pb2.NodeStatusEvent(
        state_change=relay_pb2.NODE_UNAVAILABLE, node_names=["kind-worker3"], message="connection refused"))
    lost = observer_pb2.GetFlowsResponse(node_name="kind-worker1")
    lost.lost_events.source = 3
    lost.lost_events.num_events_lost = 42
    payloads = [unavailable.SerializeToString(), *encoded(mixed_lines(3)), lost.SerializeToString()]

    async def script(request, call):
        for payload in payloads:
            yield payload

    async with ScriptedObserver(script) as server:
        source = GrpcSource(DialOptions(server=server.address), FlowQuery())
        flows, others, _ = await collect(source)
    assert len(flows) == 3
    assert [type(e) for e in others] == [NodeStatus, LostEvents]
    assert others[0].state == "NODE_UNAVAILABLE" and others[1].num_lost == 42
    stats = source.stats
    assert (stats.node_events, stats.lost_events, stats.unavailable_nodes) == (1, 42, {"kind-worker3"})


async def test_garbage_messages_are_counted_and_skipped():
    good = encoded(mixed_lines(4))

    async def script(request, call):
        for item in (good[0], b"\xff\xff\xff\xff", good[1], b"\x0a\x05\x12", good[2], good[3]):
            yield item  # the 2nd is not a GetFlowsResponse, the 4th a truncated flow

    async with ScriptedObserver(script) as server:
        source = GrpcSource(DialOptions(server=server.address), FlowQuery())
        flows, _, _ = await collect(source)
    assert len(flows) == 4 and source.stats.malformed == 2


async def test_server_that_ends_a_follow_stream_is_reconnected_and_resumed():
    times = [T0 + (i // 2) * 1000 for i in range(12)]  # pairs share a time
    payloads = encoded([flow_line(t, sport=40000 + i) for i, t in enumerate(times)])

    async def script(request, call):
        if call == 1:
            for payload in payloads[:5]:  # ends after the first of the pair at index 4..5
                yield payload
            return
        since = request.since.ToNanoseconds()
        for t, payload in zip(times, payloads):
            if t >= since:
                yield payload
        await asyncio.Event().wait()  # then stay open, as a follow stream does

    async with ScriptedObserver(script) as server:
        source = GrpcSource(DialOptions(server=server.address), FlowQuery(follow=True), retry=FAST_RETRY)
        flows, _, states = await collect(source, stop_after_flows=12)
    assert [f.src_port for f in flows] == [40000 + i for i in range(12)]
    assert source.stats.reconnects == 1 and source.stats.duplicates_dropped == 1
    resumed = server.requests[1]
    assert resumed.since.ToNanoseconds() == T0 + 2 * 1000 and resumed.follow and resumed.number == 0
    retry = next(s for s in states if s.state == RETRYING)
    assert "the server ended the stream" in retry.detail and retry.retry_in == pytest.approx(0.02)
    assert states[-1].state == STREAMING and "resumed at" in states[-1].detail


async def test_unreachable_fails_fast_with_the_reason():
    source = GrpcSource(DialOptions(server=f"127.0.0.1:{free_port()}"), FlowQuery(), fail_fast=True)
    flows, _, states = await collect(source)
    assert not flows and [s.state for s in states] == [CONNECTING, FAILED]
    assert isinstance(source.failure, UnreachableError)
    assert "cannot reach Hubble at 127.0.0.1:" in str(source.failure) and "connection refused" in str(source.failure)


async def test_retries_with_growing_delays_then_reaches_a_server_that_came_up(tmp_path):
    port = free_port()
    delays = []
    playlist = playlist_of(mixed_lines(5), tmp_path)
    source = GrpcSource(DialOptions(server=f"127.0.0.1:{port}"), FlowQuery(follow=True, number=5),
                        retry=RetryPolicy(first_delay=0.05, factor=2, jitter=0.5), rng=random.Random(7))
    server = ReplayServer(playlist, listen=f"127.0.0.1:{port}", speed=None)
    flows = []
    try:
        async with asyncio.timeout(10):
            events = source.events()
            async for item in events:
                if isinstance(item, SourceState) and item.state == RETRYING:
                    delays.append(item.retry_in)
                    if len(delays) == 3:
                        await server.start()
                elif isinstance(item, Flow):
                    flows.append(item)
                    if len(flows) == 5:
                        break
            await events.aclose()
    finally:
        await server.stop(None)
    assert 0.025 <= delays[0] <= 0.075 and 0.05 <= delays[1] <= 0.15 and 0.1 <= delays[2] <= 0.3
    assert source.stats.reconnects == 3 and len(flows) == 5


async def test_gives_up_after_max_attempts():
    source = GrpcSource(DialOptions(server=f"127.0.0.1:{free_port()}"), FlowQuery(follow=True),
                        retry=RetryPolicy(first_delay=0.01, max_attempts=2))
    _, _, states = await collect(source)
    assert [s.state for s in states] == [CONNECTING, RETRYING, CONNECTING, RETRYING, CONNECTING, FAILED]
    assert "gave up after 3 attempts" in states[-1].detail


async def test_a_server_without_the_observer_api_is_a_clear_failure():
    import grpc

    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        source = GrpcSource(DialOptions(server=f"127.0.0.1:{port}"), FlowQuery(), retry=FAST_RETRY)
        _, _, states = await collect(source)
    finally:
        await server.stop(None)
    assert states[-1].state == FAILED and "does not serve Hubble's Observer API" in states[-1].detail
    assert isinstance(source.failure, HubbleTuiError) and not isinstance(source.failure, UnreachableError)


async def test_server_status_and_nodes(tmp_path):
    async with ReplayServer(playlist_of(mixed_lines(10), tmp_path), speed=None) as server:
        source = GrpcSource(DialOptions(server=server.address))
        status = await source.server_status()
        nodes = await source.nodes()
    assert (status.num_flows, status.max_flows, status.connected_nodes, status.unavailable_nodes) == (10, 10, 2, 0)
    assert [(n.name, n.num_flows, n.state) for n in nodes] == [("kind-worker1", 5, "NODE_CONNECTED"),
                                                                ("kind-worker2", 5, "NODE_CONNECTED")]


async def test_status_of_an_unreachable_server_is_an_unreachable_error():
    with pytest.raises(UnreachableError):
        await GrpcSource(DialOptions(server=f"127.0.0.1:{free_port()}")).server_status()


def test_resumed_first_n_asks_for_the_rest_plus_the_boundary():
    source = GrpcSource(DialOptions(), FlowQuery(number=10, first=True))
    first = source._request()
    assert (first.number, first.first, first.HasField("since")) == (10, True, False)
    for i, t in enumerate((5, 6, 7, 7)):
        raw = observer_pb2.GetFlowsResponse(flow={"uuid": f"flow-{i}"})
        flow = Flow(*([0] * len(Flow._fields)))._replace(time_ns=T0 + t, src_port=i, raw=raw)
        source._tracker.delivered(flow)
        source._sent += 1
    again = source._request()
    assert again.since.ToNanoseconds() == T0 + 7 and again.first and again.number == 10 - 4 + 2


def test_server_events_for_the_cli_blocks_and_raises_unreachable(tmp_path):
    with ServerThread(playlist_of(mixed_lines(25), tmp_path), speed=None) as thread:
        events = list(server_events(ServerFlags(), thread.address, FlowQuery(number=7)))
    assert [type(e) for e in events].count(Flow) == 7
    with pytest.raises(UnreachableError, match="connection refused"):
        list(server_events(ServerFlags(timeout=2.0), f"127.0.0.1:{free_port()}", FlowQuery()))


async def test_a_server_that_accepts_but_fails_every_stream_still_backs_off():
    async def broken(request, call):
        raise RuntimeError("backend down")
        yield b""  # an async generator that fails at once

    async with ScriptedObserver(broken) as server:
        source = GrpcSource(DialOptions(server=server.address), FlowQuery(follow=True),
                            retry=RetryPolicy(first_delay=0.01, factor=2, jitter=0.0, max_attempts=3))
        _, _, states = await collect(source)
    assert [s.retry_in for s in states if s.state == RETRYING] == [0.01, 0.02, 0.04]
    assert states[-1].state == FAILED and "gave up after 4 attempts: UNKNOWN" in states[-1].detail
