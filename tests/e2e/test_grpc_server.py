"""The replay server as any Hubble client sees it: a plain generated stub over real loopback gRPC."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from grpc_support import T0, SteppedClock, flow_line, mixed_lines, playlist_of
from hubbletui.flows.decode import event_from_proto
from hubbletui.flows.model import Flow
from hubbletui.proto.flow import flow_pb2
from hubbletui.proto.observer import observer_pb2, observer_pb2_grpc
from hubbletui.server.playlist import Playlist
from hubbletui.server.replay import ReplayServer


async def get_flows(server: ReplayServer, timeout: float = 10, **request) -> list:
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = observer_pb2_grpc.ObserverStub(channel)
        return [r async for r in stub.GetFlows(observer_pb2.GetFlowsRequest(**request), timeout=timeout)]


def flows_of(responses) -> list[Flow]:
    return [e for e in map(event_from_proto, responses) if isinstance(e, Flow)]


@pytest.fixture
def lines():
    return mixed_lines(60)


async def test_unpaced_server_sends_everything_with_node_greeting_first(tmp_path, lines):
    async with ReplayServer(playlist_of(lines, tmp_path), speed=None) as server:
        responses = await get_flows(server)
    assert responses[0].WhichOneof("response_types") == "node_status"
    assert list(responses[0].node_status.node_names) == ["kind-worker1", "kind-worker2"]
    flows = flows_of(responses)
    assert [f.src_port for f in flows] == [40000 + i for i in range(60)]
    # stored bytes are sent as recorded: the JSON round trip is lossless for what we decode
    assert responses[1].flow.ethernet.source == "aa:bb:cc:dd:ee:01"


async def test_whitelist_blacklist_filters_and_time_window(tmp_path, lines):
    async with ReplayServer(playlist_of(lines, tmp_path), speed=None) as server:
        dropped = flows_of(await get_flows(server, whitelist=[flow_pb2.FlowFilter(verdict=[flow_pb2.DROPPED])]))
        assert len(dropped) == 20 and all(f.verdict == "DROPPED" for f in dropped)
        not_cart = flows_of(await get_flows(server, blacklist=[flow_pb2.FlowFilter(source_pod=["shop/cart"])]))
        assert len(not_cart) == 45 and all(f.source.pod == "web-1" for f in not_cart)
        port_and_node = flows_of(await get_flows(server, whitelist=[
            flow_pb2.FlowFilter(destination_port=["8080"], node_name=["kind-worker2"])]))
        assert len(port_and_node) == 30
        windowed = observer_pb2.GetFlowsRequest()
        windowed.since.FromNanoseconds(T0 + 10 * 10_000_000)
        windowed.until.FromNanoseconds(T0 + 19 * 10_000_000)
        in_window = flows_of(await get_flows(server, since=windowed.since, until=windowed.until))
        assert [f.src_port for f in in_window] == list(range(40010, 40020))


async def test_first_and_last_number(tmp_path, lines):
    async with ReplayServer(playlist_of(lines, tmp_path), speed=None) as server:
        first = flows_of(await get_flows(server, number=5, first=True))
        last = flows_of(await get_flows(server, number=5))
        dropped_last = flows_of(await get_flows(server, number=2,
                                                whitelist=[flow_pb2.FlowFilter(verdict=[flow_pb2.DROPPED])]))
    assert [f.src_port for f in first] == [40000, 40001, 40002, 40003, 40004]
    assert [f.src_port for f in last] == [40055, 40056, 40057, 40058, 40059]
    assert [f.src_port for f in dropped_last] == [40054, 40057]


async def test_invalid_requests_are_refused(tmp_path, lines):
    async with ReplayServer(playlist_of(lines, tmp_path), speed=None) as server:
        for request, words in (
                (dict(first=True, follow=True, number=3), "first"),
                (dict(whitelist=[flow_pb2.FlowFilter(experimental={"cel_expression": ["true"]})]), "CEL"),
                (dict(whitelist=[flow_pb2.FlowFilter(source_ip=["not-an-ip"])]), "not-an-ip"),
                (dict(field_mask={"paths": ["no_such_field"]}), "field mask")):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await get_flows(server, **request)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert words in err.value.details()


async def test_field_mask_trims_flows(tmp_path, lines):
    async with ReplayServer(playlist_of(lines, tmp_path), speed=None) as server:
        responses = await get_flows(server, number=3, field_mask={"paths": ["time", "verdict", "source.pod_name"]})
    flows = [r.flow for r in responses if r.HasField("flow")]
    assert len(flows) == 3
    assert all(f.source.pod_name and not f.source.labels and not f.HasField("ethernet") and not f.node_name
               for f in flows)


async def test_paced_follow_streams_at_recorded_gaps_times_speed(tmp_path):
    # 6 flows 200 ms apart at 4x: one every 50 ms of the server's clock, stepped here so load cannot move it
    lines = [flow_line(T0 + i * 200_000_000, sport=40000 + i) for i in range(6)]
    clock = SteppedClock()
    async with ReplayServer(playlist_of(lines, tmp_path), speed=4, clock=clock) as server:
        ports = []
        async with grpc.aio.insecure_channel(server.address) as channel:
            call = observer_pb2_grpc.ObserverStub(channel).GetFlows(observer_pb2.GetFlowsRequest(follow=True))
            async for response in call:
                if response.HasField("flow"):
                    ports.append(response.flow.l4.TCP.source_port)
                    if len(ports) == 5:
                        call.cancel()
                        break
    # follow alone starts after what has played (the first flow, at offset 0); each later one waits its gap
    assert ports == [40001, 40002, 40003, 40004, 40005]
    assert [round(s, 6) for s in clock.sleeps[:5]] == [0.05] * 5


async def test_loop_moves_times_forward(tmp_path):
    lines = [flow_line(T0 + i * 1_000_000, sport=40000 + i) for i in range(3)]  # 3 flows, 2 ms span
    async with ReplayServer(playlist_of(lines, tmp_path), speed=50, loop=True) as server:
        # period = 2 ms + 1 s gap of recorded time = about 20 ms at 50x
        await asyncio.sleep(0.1)
        flows = flows_of(await get_flows(server))
    times = [f.time_ns for f in flows]
    assert len(flows) == 3  # the buffer holds one recording's worth
    assert times == sorted(times) and times[0] > T0 + 1_000_000_000  # a later pass, moved forward in time
    assert [(t - T0) % 1_002_000_000 for t in times] == [0, 1_000_000, 2_000_000]


async def test_status_nodes_namespaces_report_what_played(tmp_path, lines):
    playlist = playlist_of(lines, tmp_path)
    async with ReplayServer(playlist, speed=None) as server:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = observer_pb2_grpc.ObserverStub(channel)
            status = await stub.ServerStatus(observer_pb2.ServerStatusRequest())
            nodes = await stub.GetNodes(observer_pb2.GetNodesRequest())
            namespaces = await stub.GetNamespaces(observer_pb2.GetNamespacesRequest())
            agent_events = channel.unary_stream("/observer.Observer/GetAgentEvents")
            with pytest.raises(grpc.aio.AioRpcError) as err:
                async for _ in agent_events(b""):
                    pass
    assert (status.num_flows, status.max_flows, status.seen_flows) == (60, 60, 60)
    assert status.num_connected_nodes.value == 2 and status.num_unavailable_nodes.value == 0
    assert status.uptime_ns > 0 and "hubbletui" in status.version
    assert [(n.name, n.num_flows, n.state) for n in nodes.nodes] == [("kind-worker1", 30, 1), ("kind-worker2", 30, 1)]
    assert [(n.cluster, n.namespace) for n in namespaces.namespaces] == [("", "db"), ("", "shop")]
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_paced_server_buffer_grows_with_time(tmp_path):
    lines = [flow_line(T0 + i * 100_000_000, sport=40000 + i) for i in range(20)]  # 2 s of recording
    async with ReplayServer(playlist_of(lines, tmp_path), speed=10) as server:  # 0.2 s at 10x
        early = flows_of(await get_flows(server))
        await asyncio.sleep(0.3)
        late = flows_of(await get_flows(server))
    assert len(early) < 20 and len(late) == 20


def test_playlist_counts_per_node(tmp_path, lines):
    playlist: Playlist = playlist_of(lines, tmp_path)
    assert playlist.flow_count == 60 and len(playlist) == 60
    assert playlist.flows_before(60 + 6) == 66  # a second pass counts on
    assert playlist.node_flows_before("kind-worker1", 60 + 2) == 31
