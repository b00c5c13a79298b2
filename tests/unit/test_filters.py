"""FlowFilter semantics on our Flow model: what observe, record and the replay server all rely on."""

from __future__ import annotations

import pytest

from hubbletui.flows.decode import event_from_json
from hubbletui.flows.filters import FilterError, compile_request
from hubbletui.flows.request import FilterSpec, build_filters
from hubbletui.proto.flow import flow_pb2


def flow(src_ns="database", src_pod="fdb-exporter-1", dst_ns="database", dst_pod="foundationdb-0", dport=4500,
         verdict="DROPPED", src_ip="10.244.1.5", dst_ip="10.244.2.7", labels=("k8s:app=fdb-exporter",), event_type=True):
    return event_from_json({"flow": {
        "time": "2026-11-27T23:00:01Z", "verdict": verdict, "IP": {"source": src_ip, "destination": dst_ip},
        "l4": {"TCP": {"source_port": 40000, "destination_port": dport, "flags": {"SYN": True}}},
        "source": {"namespace": src_ns, "pod_name": src_pod, "labels": list(labels)},
        "destination": {"namespace": dst_ns, "pod_name": dst_pod, "labels": ["k8s:app=foundationdb"]},
        "traffic_direction": "EGRESS", "drop_reason_desc": "POLICY_DENIED", "node_name": "demo/worker-1",
        **({"event_type": {"type": 1, "sub_type": 133}} if event_type else {})}})


def matcher(**spec):
    return compile_request(*build_filters(FilterSpec(**spec)))


def test_sideless_flags_match_either_side():
    m = matcher(pod=("database/foundationdb",))
    assert m(flow()) and m(flow(src_pod="foundationdb-1", dst_pod="x"))
    assert not m(flow(src_pod="a", dst_pod="b"))
    ns = matcher(namespace=("monitoring",))
    assert ns(flow(src_ns="monitoring")) and ns(flow(dst_ns="monitoring")) and not ns(flow())


def test_sided_flags_and_fields_are_anded():
    m = matcher(from_pod=("database/fdb-exporter",), to_port=("4500",), verdict=("DROPPED",))
    assert m(flow())
    assert not m(flow(dport=4501)) and not m(flow(verdict="FORWARDED")) and not m(flow(src_pod="other"))


def test_pod_without_namespace_means_default_like_hubble():
    assert matcher(pod=("fdb",), namespace=("database",))(flow())
    assert not matcher(pod=("fdb",))(flow())
    assert matcher(pod=("fdb",))(flow(src_ns="default"))


def test_labels_ips_and_cidrs():
    assert matcher(label=("app=fdb-exporter",))(flow())
    assert matcher(label=("k8s:app in (foundationdb, x)",))(flow())
    assert not matcher(from_label=("app!=fdb-exporter",))(flow())
    assert matcher(to_ip=("10.244.0.0/16",))(flow()) and not matcher(to_ip=("10.0.0.0/16",))(flow())
    assert matcher(ip=("10.244.1.5",))(flow())


def test_blacklist_wins_over_whitelist():
    deny = flow_pb2.FlowFilter(destination_port=["4500"])
    m = compile_request([flow_pb2.FlowFilter(verdict=[flow_pb2.DROPPED])], [deny])
    assert not m(flow()) and m(flow(dport=80))


def test_drop_reason_direction_node_and_type():
    assert matcher(drop_reason_desc=("POLICY_DENIED",), traffic_direction=("egress",))(flow())
    assert not matcher(traffic_direction=("ingress",))(flow())
    assert matcher(node_name=("worker-*",))(flow()) and matcher(node_name=("demo/worker-1",))(flow())
    assert matcher(type=("drop",))(flow()) and matcher(type=("drop:POLICY_DENIED",))(flow())
    assert not matcher(type=("trace",))(flow())


def test_a_drop_without_an_event_type_is_no_drop_event_as_in_hubble():
    assert not matcher(type=("drop",))(flow(event_type=False))
    assert matcher(verdict=("DROPPED",))(flow(event_type=False))


@pytest.mark.parametrize("spec", [{"verdict": ("NOPE",)}, {"label": ("a=(",)}, {"port": ("http",)},
                                  {"type": ("bogus",)}, {"protocol": ("carrier-pigeon",)}])
def test_bad_values_are_errors(spec):
    with pytest.raises(FilterError):
        compile_request(*build_filters(FilterSpec(**spec)))


def test_cel_expressions_are_refused_not_ignored():
    flt = flow_pb2.FlowFilter()
    flt.experimental.cel_expression.append("_flow.verdict == Verdict.DROPPED")
    with pytest.raises(FilterError, match="CEL expressions"):
        compile_request([flt])
