"""The small parts under the engine: the identity-label filter, selectors (one at a time and over an index),
port sets."""

from __future__ import annotations

import random

import pytest

from hubbletui.flows.labels import LabelIndex, Requirement, Selector, parse_hubble_labels
from hubbletui.policy.labels import is_identity_label, pod_identity_labels
from hubbletui.policy.ports import ALL_PORTS, PortClause, PortSet
from hubbletui.policy.selectors import SelectorError, parse_label_selector


@pytest.mark.parametrize("key, kept", [
    ("app", True), ("app.kubernetes.io/name", True), ("team", True), ("version", True),
    ("pod-template-hash", False), ("controller-revision-hash", False), ("pod-template-generation", False),
    ("statefulset.kubernetes.io/pod-name", False), ("apps.kubernetes.io/pod-index", False),
    # v1.19 (pkg/labelsfilter/filter.go, identity-relevant-labels.rst): only two batch.kubernetes.io keys are
    # dropped, and topology.kubernetes.io/* is kept (no ignore pattern matches it at the start of the key)
    ("batch.kubernetes.io/job-name", True), ("batch.kubernetes.io/job-completion-index", False),
    ("batch.kubernetes.io/controller-uid", False), ("controller-uid", False), ("kubernetes.io/hostname", False),
    ("topology.kubernetes.io/zone", True), ("beta.kubernetes.io/arch", False),
    ("failure-domain.beta.kubernetes.io/zone", False), ("k8s.io/foo", False), ("io.kubernetes.container.name", False),
    ("io.kubernetes.pod.namespace", True), ("annotation.x", False), ("etcd_node", False),
])
def test_default_label_filter(key, kept):
    assert is_identity_label(key) is kept


def test_pod_identity_labels_match_what_hubble_shows():
    labels = pod_identity_labels("kube-system", {"app": "csi", "pod-template-hash": "77"},
                                 {"kubernetes.io/metadata.name": "kube-system"}, "csi-sa")
    # the same set Hubble printed for such a pod in ../shared/samples/flows/tke-guide__cilium-1.19.1-export.jsonl
    assert labels.hubble_form() == [
        "k8s:app=csi", "k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=kube-system",
        "k8s:io.cilium.k8s.policy.cluster=default", "k8s:io.cilium.k8s.policy.serviceaccount=csi-sa",
        "k8s:io.kubernetes.pod.namespace=kube-system"]
    assert parse_hubble_labels(labels.hubble_form()) == labels


def test_selector_parsing_and_errors():
    sel = parse_label_selector({"matchLabels": {"k8s:app": "x", "$host": "", "tier": 3},
                                "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]})
    assert [(r.source, r.key, r.op, r.values) for r in sel.requirements] == [
        ("k8s", "app", "In", ("x",)), ("reserved", "host", "In", ("",)), ("any", "tier", "In", ("3",)),
        ("any", "env", "NotIn", ("dev",))]
    with pytest.raises(SelectorError, match="unknown selector operator"):
        parse_label_selector({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]})
    with pytest.raises(SelectorError, match="needs values"):
        parse_label_selector({"matchExpressions": [{"key": "a", "operator": "In"}]})


def test_label_index_agrees_with_matching_one_at_a_time():
    rng = random.Random(7)
    keys, values, sources = ["app", "tier", "team"], ["a", "b", "c"], ["k8s", "any", "reserved"]
    members = []
    for i in range(60):
        full = {f"k8s:{k}": rng.choice(values) for k in keys if rng.random() < 0.7}
        if rng.random() < 0.2:
            full["reserved:world"] = ""
        members.append((i, parse_hubble_labels([f"{k}={v}" if v else k for k, v in full.items()])))
    index = LabelIndex(members)
    for _ in range(300):
        reqs = []
        for _ in range(rng.randrange(0, 3)):
            op = rng.choice(["In", "NotIn", "Exists", "DoesNotExist"])
            vals = tuple(rng.sample(values, 2)) if op in ("In", "NotIn") else ()
            reqs.append(Requirement(rng.choice(sources), rng.choice(keys + ["world"]), op, vals))
        sel = Selector(tuple(reqs))
        assert index.select(sel) == {m for m, labels in members if sel.matches(labels)}, sel


def test_port_clauses():
    named = {"http": ((8080, "TCP"),), "dns": ((53, "UDP"), (53, "TCP"))}
    assert PortClause(80, 90, "", "TCP").matches(85, "TCP", named)
    assert not PortClause(80, 90, "", "TCP").matches(85, "UDP", named)
    assert PortClause(0, 0, "", "ANY").matches(1, "SCTP", named)
    assert not PortClause(0, 0, "", "ANY").matches(8, "ICMPv4", named)
    assert PortClause(0, 0, "dns", "ANY").ranges(named) == {"UDP": [(53, 53)], "TCP": [(53, 53)]}
    assert PortClause(0, 0, "dns", "UDP").ranges(named) == {"UDP": [(53, 53)]}
    assert PortClause(0, 0, "missing", "TCP").ranges(named) == {}


def test_port_set_arithmetic():
    a = PortSet({"TCP": [(80, 90), (85, 100), (200, 200)], "UDP": [(53, 53)]})
    assert a.ranges == {"TCP": [(80, 100), (200, 200)], "UDP": [(53, 53)]}
    b = PortSet({"TCP": [(95, 300)]})
    assert (a & b).ranges == {"TCP": [(95, 100), (200, 200)]}
    assert (a - b).ranges == {"TCP": [(80, 94)], "UDP": [(53, 53)]}
    assert (a | b).text() == "TCP 80-300; UDP 53"
    assert (ALL_PORTS - PortSet({"TCP": [(22, 22)]})).contains("TCP", 23)
    assert not (ALL_PORTS - PortSet({"TCP": [(22, 22)]})).contains("TCP", 22)
    assert ALL_PORTS.text() == "all connections" and PortSet().text() == "nothing" and not PortSet()
