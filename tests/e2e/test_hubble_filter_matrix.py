"""Every `hubble observe` filter flag, three ways, against the real hubble CLI v1.19.4 reading the same recording:

- the real hubble client streaming from `hubbletui serve` (our server evaluates what hubble's client sends),
- `hubbletui observe --input-file` (our flags, our evaluation),
- `hubbletui observe --server` against `hubbletui serve` (our flags, sent, evaluated by our server),

each compared, flow for flow, with `hubble observe --input-file` (hubble's flags and hubble's evaluation).
The recording is every sample, the demo and made-up flows carrying the fields the samples lack (encryption,
SNAT, trace ids, interface, node labels, a namespace without a pod, a drop without an event type, ...).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from google.protobuf import json_format

from grpc_support import ServerThread
from hubbletui.flows.recording import read_events
from hubbletui.proto.flow import flow_pb2
from hubbletui.server.playlist import Playlist
from paths import ROOT, SAMPLES, SHARED

HUBBLE = SHARED / "hubble" / "hubble"
pytestmark = pytest.mark.skipif(not HUBBLE.exists(), reason=f"the real hubble CLI is not at {HUBBLE}")

CASES = [
    # pods, namespaces: the edge forms (a bare name is the default namespace; "/" any named endpoint)
    ["--pod", "productpage"], ["--pod", "api"], ["--pod", "bookinfo/productpage"], ["--pod", "/"], ["-A"],
    ["--pod", "/web"], ["--pod", "shop/"], ["--from-pod", "shop/web"], ["--to-pod", "default/api"],
    ["-n", "kube-system"], ["-n", "shop", "--pod", "web"], ["--from-namespace", "shop"],
    ["--to-namespace", "database"], ["--from-all-namespaces"], ["--to-all-namespaces"],
    ["--not", "--pod", "bookinfo/"], ["--not", "-n", "kube-system", "--verdict", "FORWARDED"],
    ["--verdict", "DROPPED", "--not", "--to-port", "4500"],
    # labels, addresses, ports, protocols
    ["-l", "k8s:app=productpage"], ["--from-label", "app=web"], ["--to-label", "k8s:app in (api, foundationdb)"],
    ["--ip", "10.0.1.9"], ["--from-ip", "10.244.0.0/16"], ["--to-ip", "10.244.0.177"], ["--snat-ip", "192.0.2.7"],
    ["--snat-ip", "192.0.2.0/24"], ["--ip-version", "v6"], ["-4"], ["-6"], ["--ip-version", "none"],
    ["--port", "53"], ["--from-port", "53"], ["--to-port", "9080"], ["--protocol", "TCP"], ["--protocol", "udp"],
    ["--protocol", "ICMPv4"], ["--protocol", "http"], ["--protocol", "dns"], ["--tcp-flags", "syn"],
    ["--tcp-flags", "SYN,ACK"], ["--tcp-flags", "fin", "--tcp-flags", "rst"],
    # kinds of events and verdicts
    ["--type", "drop"], ["--type", "1"], ["--type", "trace"], ["--type", "trace:to-stack"], ["--type", "4:3"],
    ["--type", "policy-verdict"], ["--type", "l7"], ["--type", "6"], ["--verdict", "REDIRECTED"],
    ["--verdict", "DROPPED", "--verdict", "FORWARDED"], ["--drop-reason-desc", "POLICY_DENIED"],
    ["--traffic-direction", "egress"], ["--traffic-direction", "INGRESS"],
    # identities, names, services, workloads, clusters, nodes
    ["--identity", "2"], ["--identity", "world"], ["--from-identity", "host"], ["--to-identity", "45228"],
    ["--fqdn", "api.stripe.com"], ["--to-fqdn", "*.amazonaws.com"], ["--from-fqdn", "*.shop.example"],
    ["--service", "api"], ["--from-service", "shop/web"], ["--to-service", "kube-system/kube-dns"],
    ["--workload", "fdb-exporter"], ["--from-workload", "Deployment/cart"], ["--to-workload", "StatefulSet/"],
    ["--cluster", "demo"], ["--from-cluster", "east"], ["--to-cluster", "default"],
    ["--node-name", "kind-worker"], ["--node-name", "demo/worker-*"], ["--node-label", "topology.kubernetes.io/zone=eu-1a"],
    # L7, ids, interfaces, encryption
    ["--http-status", "503"], ["--http-status", "2+"], ["--http-method", "POST"], ["--http-path", "/product.*"],
    ["--http-url", "http://api/.*"], ["--http-header", "X-Tenant:blue"], ["--http-header", "Accept:*/*"],
    ["--uuid", "0d6a5c7e-1f2a-4b3c-8d9e-a1b2c3d4e5f6"], ["--trace-id", "4bf92f3577b34da6a3ce929d0e0e4736"],
    ["--ip-trace-id", "77"], ["--interface", "eth0"], ["--interface", "cilium_vxlan"], ["--encrypted"],
    ["--unencrypted"],
    # raw filters
    ["--allowlist", '{"source_pod":["kube-system/"]}'], ["--allowlist", '{"sourcePod":["kube-system/"]}'],
    ["--allowlist", '{"verdict":[2]}', "--denylist", '{"destination_port":["4500"]}'],
    ["--denylist", '{"protocol":["udp"]}'],
]


def _flow(i: int, **fields) -> dict:
    """Made-up flow ``i`` (times and source ports apart); ``fields`` replace its own (None drops one)."""
    time = f"2026-11-28T10:00:00.{i:03d}Z"
    flow = {"time": time, "verdict": "FORWARDED",
            "IP": {"source": f"10.0.0.{i + 1}", "destination": "10.0.1.9", "ipVersion": "IPv4"},
            "l4": {"TCP": {"source_port": 40000 + i, "destination_port": 8080, "flags": {"ACK": True}}},
            "source": {"namespace": "shop", "pod_name": f"web-{i}", "identity": 1234, "labels": ["k8s:app=web"]},
            "destination": {"namespace": "default", "pod_name": "api-0", "identity": 5678, "labels": ["k8s:app=api"]},
            "Type": "L3_L4", "node_name": "kind-worker", "event_type": {"type": 4, "sub_type": 0},
            "traffic_direction": "INGRESS", "is_reply": False}
    for key, value in fields.items():
        if value is None:
            flow.pop(key, None)
        else:
            flow[key] = value
    return {"flow": flow, "node_name": "kind-worker", "time": time}


def made_up_flows() -> list[dict]:
    """The fields the samples lack, each on one flow."""
    ip = {"destination": "10.0.1.9", "ipVersion": "IPv4"}
    return [
        _flow(1, IP={**ip, "source": "10.0.0.2", "encrypted": True}),
        _flow(2, IP={**ip, "source": "10.0.0.3", "source_xlated": "192.0.2.7"}),
        _flow(3, trace_context={"parent": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}}),
        _flow(4, ip_trace_id={"trace_id": "77", "ip_option_type": 136}),
        _flow(5, interface={"index": 3, "name": "eth0"}),
        _flow(6, node_labels=["kubernetes.io/hostname=kind-worker", "topology.kubernetes.io/zone=eu-1a"]),
        _flow(7, uuid="0d6a5c7e-1f2a-4b3c-8d9e-a1b2c3d4e5f6"),
        _flow(8, source={"namespace": "shop", "identity": 1234, "labels": ["k8s:app=web"]}),  # no pod name
        _flow(9, source={"pod_name": "orphan-1", "identity": 1234}),  # no namespace
        _flow(10, verdict="DROPPED", drop_reason_desc="POLICY_DENIED", drop_reason=133, event_type=None),
        _flow(11, IP={"source": "fd00::1", "destination": "fd00::2", "ipVersion": "IPv6"}),
        _flow(12, IP=None, l4=None, ethernet={"source": "aa:bb:cc:dd:ee:01", "destination": "aa:bb:cc:dd:ee:02"}),
        _flow(13, Type="L7", event_type={"type": 129}, l4={"TCP": {"source_port": 40013, "destination_port": 8080}},
              l7={"type": "REQUEST", "http": {"method": "GET", "url": "http://api/v1/x", "protocol": "HTTP/1.1",
                                              "headers": [{"key": "X-Tenant", "value": "blue"},
                                                          {"key": "Accept", "value": "*/*"}]}}),
        _flow(14, source={"namespace": "default", "pod_name": "web-default", "identity": 1234,
                          "labels": ["k8s:app=web"]}),
        _flow(15, source_service={"namespace": "shop", "name": "web"}, source_names=["web.shop.example"],
              destination_service={"namespace": "kube-system", "name": "kube-dns"}),
        _flow(16, source={"namespace": "shop", "pod_name": "cart-1", "identity": 1234, "cluster_name": "east",
                          "workloads": [{"kind": "Deployment", "name": "cart"}], "labels": ["k8s:app=cart"]},
              destination_service={"namespace": "default", "name": "api"}),
        _flow(17, l4={"TCP": {"source_port": 40017, "destination_port": 443, "flags": {"SYN": True, "ACK": True}}}),
        _flow(18, l4={"UDP": {"source_port": 53, "destination_port": 5353}}, event_type={"type": 4, "sub_type": 3}),
        _flow(19, IP={**ip, "source": "10.0.0.20", "encrypted": False}, interface={"index": 7, "name": "cilium_wg0"}),
        _flow(20, source={"namespace": "default", "pod_name": "productpage-default-1", "identity": 1234,
                          "labels": ["k8s:app=web"]}),
    ]


def case_id(args: list[str]) -> str:
    return " ".join(args)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    parts = [p.read_bytes() for p in [*sorted(p for p in SAMPLES.glob("*") if p.is_file()),
                                       ROOT / "hubbletui" / "demo" / "flows.jsonl"]]
    parts.append("".join(json.dumps(line) + "\n" for line in made_up_flows()).encode())
    path = tmp_path_factory.mktemp("matrix") / "all.jsonl"
    path.write_bytes(b"".join(part if part.endswith(b"\n") else part + b"\n" for part in parts))
    return path


@pytest.fixture(scope="module")
def server(recording):
    with ServerThread(Playlist.from_events(read_events(recording), "matrix"), speed=None) as thread:
        yield thread


def flows_of(stdout: str) -> list[bytes]:
    """The flows printed (jsonpb lines) as protobuf: hubble writes each anew, ours may pass the line through."""
    out = []
    for line in stdout.splitlines():
        obj = json.loads(line)
        if "flow" in obj:
            flow = json_format.ParseDict(obj["flow"], flow_pb2.Flow(), ignore_unknown_fields=True)
            out.append(flow.SerializeToString(deterministic=True))
    return sorted(out)


def run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "TZ": "UTC"})


@pytest.fixture(scope="module")
def reference(recording):
    cache: dict[str, subprocess.CompletedProcess] = {}

    def get(args: list[str]) -> subprocess.CompletedProcess:
        key = case_id(args)
        if key not in cache:
            cache[key] = run([str(HUBBLE), "observe", "--input-file", str(recording), "--all", "-o", "jsonpb", *args])
        return cache[key]

    return get


def test_the_recording_reaches_every_kind_of_case(reference):
    # the matrix means something only where flags select some flows and leave others
    counts = {case_id(args): len(flows_of(reference(args).stdout)) for args in CASES
              if reference(args).returncode == 0}
    total = len(flows_of(reference([]).stdout))
    empty = [name for name, n in counts.items() if n == 0]
    everything = [name for name, n in counts.items() if n == total]
    assert empty == ["--type 6"], f"cases that select nothing here: {empty}"  # no recorder captures here
    assert not everything, f"cases that select everything here: {everything}"


@pytest.mark.parametrize("args", CASES, ids=case_id)
def test_hubble_client_against_our_server(args, server, reference):
    expected = reference(args)
    ours = run([str(HUBBLE), "observe", "--server", server.address, "--all", "-o", "jsonpb", *args])
    assert (ours.returncode == 0) == (expected.returncode == 0), (ours.stderr, expected.stderr)
    if expected.returncode == 0:
        assert flows_of(ours.stdout) == flows_of(expected.stdout)


@pytest.mark.parametrize("args", CASES, ids=case_id)
def test_our_observe_reading_the_recording(args, recording, reference):
    expected = reference(args)
    ours = run([sys.executable, "-m", "hubbletui", "observe", "--input-file", str(recording), "-o", "jsonpb", *args])
    assert (ours.returncode == 0) == (expected.returncode == 0), (ours.stderr, expected.stderr)
    if expected.returncode == 0:
        assert flows_of(ours.stdout) == flows_of(expected.stdout)


@pytest.mark.parametrize("args", CASES, ids=case_id)
def test_our_observe_against_our_server(args, server, reference):
    expected = reference(args)
    ours = run([sys.executable, "-m", "hubbletui", "observe", "--server", server.address, "--all", "-o", "jsonpb",
                *args])
    assert (ours.returncode == 0) == (expected.returncode == 0), (ours.stderr, expected.stderr)
    if expected.returncode == 0:
        assert flows_of(ours.stdout) == flows_of(expected.stdout)


def test_cel_expressions_are_refused_with_a_plain_reason(server):
    proc = run([str(HUBBLE), "observe", "--server", server.address, "--all", "--cel-expression",
                "_flow.verdict == Verdict.DROPPED"])
    assert proc.returncode != 0 and "CEL expressions (--cel-expression) are not supported" in proc.stderr
    ours = run([sys.executable, "-m", "hubbletui", "observe", "--server", server.address, "--cel-expression", "x"])
    assert ours.returncode != 0 and "CEL expressions" in ours.stderr
