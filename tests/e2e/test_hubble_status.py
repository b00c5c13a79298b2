"""`hubbletui serve` answers what `hubble status` and `hubble list nodes` ask: the gRPC health check, and the
recording's own node_status events in ServerStatus and GetNodes. The real hubble CLI v1.19.4 is the client
where it is present."""

from __future__ import annotations

import json
import subprocess

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from grpc_support import T0, ServerThread, flow_line, playlist_of
from hubbletui.flows.timefmt import format_rfc3339_ns
from hubbletui.proto.observer import observer_pb2, observer_pb2_grpc
from hubbletui.proto.relay import relay_pb2
from paths import ROOT, SHARED
from hubbletui.flows.recording import read_events
from hubbletui.server.playlist import Playlist

HUBBLE = SHARED / "hubble" / "hubble"
DEMO = ROOT / "hubbletui" / "demo" / "flows.jsonl"
needs_hubble = pytest.mark.skipif(not HUBBLE.exists(), reason=f"the real hubble CLI is not at {HUBBLE}")


def status_line(t_ns: int, state: str, names: list[str]) -> dict:
    return {"node_status": {"state_change": state, "node_names": names}, "node_name": "relay",
            "time": format_rfc3339_ns(t_ns)}


@pytest.fixture
def demo_server():
    with ServerThread(Playlist.from_events(read_events(DEMO), "demo"), speed=None) as server:
        yield server


def test_health_check_serves_hubbles_observer_name_and_the_server(demo_server):
    with grpc.insecure_channel(demo_server.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("hubble.server.Observer", ""):
            answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as err:
            stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_node_status_events_of_the_recording_are_what_status_and_nodes_report(tmp_path):
    # n1 has flows; n2 appears through an event and becomes unavailable; n3 comes and goes
    lines = [flow_line(T0, node="n1"), status_line(T0 + 1, "NODE_CONNECTED", ["n2", "n3"]),
             flow_line(T0 + 2, node="n1", sport=40001), status_line(T0 + 3, "NODE_UNAVAILABLE", ["n2"]),
             status_line(T0 + 4, "NODE_GONE", ["n3"])]
    with ServerThread(playlist_of(lines, tmp_path), speed=None) as server, \
            grpc.insecure_channel(server.address) as channel:
        stub = observer_pb2_grpc.ObserverStub(channel)
        status = stub.ServerStatus(observer_pb2.ServerStatusRequest(), timeout=10)
        nodes = stub.GetNodes(observer_pb2.GetNodesRequest(), timeout=10).nodes
        greeting = [r for r in stub.GetFlows(observer_pb2.GetFlowsRequest(number=1), timeout=10)
                    if r.HasField("node_status")][:2]
    assert (status.num_connected_nodes.value, status.num_unavailable_nodes.value) == (1, 1)
    assert list(status.unavailable_nodes) == ["n2"]
    assert [(n.name, relay_pb2.NodeState.Name(n.state)) for n in nodes] == \
        [("n1", "NODE_CONNECTED"), ("n2", "NODE_UNAVAILABLE")]
    assert nodes[0].seen_flows == 2 and nodes[1].seen_flows == 0
    assert [(list(g.node_status.node_names), g.node_status.state_change) for g in greeting] == \
        [(["n1"], 1), (["n2"], 2)]


def test_a_node_known_only_from_a_later_event_is_not_there_before_it_plays(tmp_path):
    lines = [flow_line(T0, node="n1"), status_line(T0 + 10**9, "NODE_CONNECTED", ["n2"])]
    with ServerThread(playlist_of(lines, tmp_path), speed=1e-6) as server, \
            grpc.insecure_channel(server.address) as channel:
        nodes = observer_pb2_grpc.ObserverStub(channel).GetNodes(observer_pb2.GetNodesRequest(), timeout=10).nodes
    assert [n.name for n in nodes] == ["n1"]


def hubble(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(HUBBLE), *args], capture_output=True, text=True, timeout=60)


@needs_hubble
def test_hubble_status_against_serve(demo_server):
    proc = hubble("status", "--server", demo_server.address)
    assert proc.returncode == 0, proc.stderr
    assert f"Healthcheck (via {demo_server.address}): Ok" in proc.stdout
    assert "Current/Max Flows: 1,134/1,134 (100.00%)" in proc.stdout
    assert "Connected Nodes: 3/4" in proc.stdout
    assert "Unavailable Nodes: 1\n  - demo/control-plane" in proc.stdout


@needs_hubble
def test_hubble_list_nodes_against_serve(demo_server):
    proc = hubble("list", "nodes", "--server", demo_server.address, "-o", "json")
    assert proc.returncode == 0, proc.stderr
    nodes = {n["name"]: n for n in json.loads(proc.stdout)}
    assert sorted(nodes) == ["demo/control-plane", "demo/worker-1", "demo/worker-2", "demo/worker-3"]
    assert nodes["demo/control-plane"]["state"] == "NODE_UNAVAILABLE"
    assert nodes["demo/worker-1"]["state"] == "NODE_CONNECTED" and nodes["demo/worker-1"]["seen_flows"] == "432"
    table = hubble("list", "nodes", "--server", demo_server.address)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[1].split()[:2] == ["demo/control-plane", "Unavailable"]
