"""Decoding Hubble's JSON and protobuf forms into Flow: every real sample, every form Hubble may write."""

from __future__ import annotations

import collections

import orjson
import pytest
from google.protobuf import json_format

from hubbletui.flows.conn import flow_port
from hubbletui.flows.decode import DecodeError, event_from_bytes, event_from_json, event_from_proto, to_proto_names
from hubbletui.flows.model import Flow, LostEvents, NodeStatus
from hubbletui.flows.recording import read_events
from hubbletui.proto.observer import observer_pb2


def sample_flows(samples_dir):
    for path in sorted(samples_dir.iterdir()):
        yield from read_events(path)


def test_every_sample_decodes_with_expected_counts(samples_dir):
    flows = list(sample_flows(samples_dir))
    assert len(flows) == 1921 and all(isinstance(f, Flow) for f in flows)
    verdicts = collections.Counter(f.verdict for f in flows)
    assert verdicts == {"FORWARDED": 1462, "REDIRECTED": 457, "DROPPED": 2}
    events = collections.Counter(f.event_type for f in flows)
    assert events == {129: 901, 4: 561, 5: 457, 0: 2}
    protocols = collections.Counter(f.protocol for f in flows)
    assert protocols == {"TCP": 1324, "UDP": 578, "ICMPv4": 18, "ICMPv6": 1}
    l7 = collections.Counter(f.l7.protocol for f in flows if f.l7)
    assert l7 == {"http": 418, "dns": 483}


def test_the_documented_policy_drop(samples_dir):
    drops = [f for f in sample_flows(samples_dir) if f.drop_reason == 133]
    assert len(drops) == 1
    drop = drops[0]
    assert drop.drop_reason_name == "POLICY_DENIED"
    assert drop.source.ref == "default/xwing"
    assert drop.destination.pod == "deathstar-7848d6c4d5-th9v2"
    assert (drop.protocol, drop.src_port, drop.dst_port, drop.tcp_flags) == ("TCP", 44916, 80, ("SYN",))
    assert drop.is_drop and flow_port(drop).text == "80/TCP"


def test_newer_fields_of_cilium_1_19(samples_dir):
    flows = list(read_events(samples_dir / "tke-guide__cilium-1.19.1-export.jsonl"))
    assert flows[0].destination.cluster == "default"
    assert flows[0].destination.workloads == (("Deployment", "csi-cbs-controller"),)
    assert flows[0].source.ref == "kube-apiserver"  # reserved:kube-apiserver + reserved:world: the shorter wins


def test_protobuf_path_equals_json_path(samples_dir):
    for path in sorted(samples_dir.iterdir()):
        for line in path.read_text().splitlines():
            from_json = event_from_json(orjson.loads(line))
            msg = json_format.Parse(line, observer_pb2.GetFlowsResponse())
            from_proto = event_from_proto(msg)
            assert from_proto[:-1] == from_json[:-1], line[:200]
            assert event_from_bytes(msg.SerializeToString())[:-1] == from_json[:-1]


BASE = {"flow": {"time": "2026-11-27T23:00:01.000000123Z", "verdict": "DROPPED", "drop_reason": 133,
                 "IP": {"source": "10.0.0.1", "destination": "10.0.0.2", "ipVersion": "IPv4"},
                 "l4": {"TCP": {"source_port": 40000, "destination_port": 4500, "flags": {"SYN": True}}},
                 "source": {"identity": 1234, "namespace": "database", "pod_name": "fdb-exporter-1",
                            "labels": ["k8s:app=fdb-exporter"], "workloads": [{"name": "fdb-exporter",
                                                                                "kind": "Deployment"}]},
                 "destination": {"identity": 5678, "namespace": "database", "pod_name": "foundationdb-0"},
                 "traffic_direction": "EGRESS", "drop_reason_desc": "POLICY_DENIED",
                 "event_type": {"type": 1, "sub_type": 133}, "is_reply": False,
                 "egress_denied_by": [{"name": "deny", "namespace": "database", "revision": "6",
                                       "kind": "CiliumNetworkPolicy"}]},
        "node_name": "demo/worker-1", "time": "2026-11-27T23:00:01.000000123Z"}


def test_camel_case_names_enums_as_numbers_and_64_bit_strings():
    reference = event_from_json(BASE)
    camel = orjson.loads(orjson.dumps(BASE).replace(b'"source_port"', b'"sourcePort"')
                         .replace(b'"destination_port"', b'"destinationPort"').replace(b'"pod_name"', b'"podName"')
                         .replace(b'"traffic_direction"', b'"trafficDirection"')
                         .replace(b'"drop_reason_desc"', b'"dropReasonDesc"').replace(b'"node_name"', b'"nodeName"')
                         .replace(b'"egress_denied_by"', b'"egressDeniedBy"'))
    assert event_from_json(to_proto_names(camel))[:-1] == reference[:-1]
    numeric = orjson.loads(orjson.dumps(BASE))
    numeric["flow"].update(verdict=2, traffic_direction=2, drop_reason_desc=133)
    assert event_from_json(numeric)[:-1] == reference[:-1]
    assert reference.time_ns == 1_795_820_401_000_000_123
    assert reference.egress_denied_by[0].revision == 6
    assert reference.egress_denied_by[0].ref == "CiliumNetworkPolicy/database/deny"
    assert reference.source.workload_ref == "database/fdb-exporter"


def test_legacy_bare_flow_is_wrapped_as_jsonpb():
    event = event_from_json(BASE["flow"])
    assert event._replace(node="", raw=None) == event_from_json(BASE)._replace(node="", raw=None)
    assert event.raw["flow"] is BASE["flow"]


def test_status_events_are_kept():
    status = event_from_json({"node_status": {"state_change": "NODE_UNAVAILABLE", "node_names": ["a/b"],
                                              "message": "dial timeout"}, "time": "2026-01-01T00:00:00Z"})
    assert isinstance(status, NodeStatus) and status.state == "NODE_UNAVAILABLE" and status.node_names == ("a/b",)
    lost = event_from_json({"lost_events": {"source": "HUBBLE_RING_BUFFER", "num_events_lost": "42", "cpu": 3}})
    assert isinstance(lost, LostEvents) and (lost.num_lost, lost.cpu, lost.source) == (42, 3, "HUBBLE_RING_BUFFER")


@pytest.mark.parametrize("bad", [[1, 2], "text", {"flow": []}, {"flow": {"l4": {"TCP": []}}},
                                 {"flow": {"time": 12}}, {"flow": {"time": "yesterday"}}, {"nothing": 1}])
def test_malformed_objects_raise_decode_errors(bad):
    with pytest.raises(ValueError):
        event_from_json(bad)


def test_truncated_protobuf_is_a_decode_error():
    data = json_format.Parse(orjson.dumps(BASE), observer_pb2.GetFlowsResponse()).SerializeToString()
    with pytest.raises(DecodeError):
        event_from_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("time_text", ["2026-11-27T23:00:01Z", "2026-11-27T23:00:01.000000001Z",
                                       "2026-11-27T23:00:01.999999999Z", "1970-01-01T00:00:05.5Z", None])
def test_wire_path_timestamps_of_every_shape(time_text):
    obj = orjson.loads(orjson.dumps(BASE))
    obj["flow"].pop("time")
    obj.pop("time")
    if time_text:
        obj["flow"]["time"] = time_text
    expected = event_from_json(obj)
    data = json_format.Parse(orjson.dumps(obj), observer_pb2.GetFlowsResponse()).SerializeToString()
    assert event_from_bytes(data)[:-1] == expected[:-1]


def test_wire_path_reply_flags_and_policies():
    for is_reply in (True, False, None):
        obj = orjson.loads(orjson.dumps(BASE))
        if is_reply is None:
            obj["flow"].pop("is_reply")
        else:
            obj["flow"]["is_reply"] = is_reply
        data = json_format.Parse(orjson.dumps(obj), observer_pb2.GetFlowsResponse()).SerializeToString()
        flow = event_from_bytes(data)
        assert flow.is_reply is is_reply
        assert flow.egress_denied_by[0].ref == "CiliumNetworkPolicy/database/deny"
        assert flow.raw == data
