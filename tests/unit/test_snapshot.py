"""Loading cluster snapshots: every shape kubectl writes, bad files reported and skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hubbletui.cluster.snapshot import load_snapshot
from hubbletui.errors import HubbleTuiError

POD = """apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
  labels: {{app: {name}}}
spec:
  containers: [{{name: c}}]
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_single_objects_multi_documents_and_nested_folders(tmp_path):
    write(tmp_path / "a.yaml", POD.format(name="one", ns="shop"))
    write(tmp_path / "nested" / "deeper" / "b.yml",
          POD.format(name="two", ns="shop") + "---\n" + POD.format(name="three", ns="ops") + "---\n")
    write(tmp_path / "notes.txt", "not a manifest")
    state = load_snapshot(tmp_path)
    assert sorted(k for k in state.objects["Pod"]) == [("ops", "three"), ("shop", "one"), ("shop", "two")]
    assert state.warnings == []


def test_kubectl_lists_whose_items_carry_no_kind(tmp_path):
    pod_list = {"apiVersion": "v1", "kind": "PodList", "items": [
        {"metadata": {"name": "p1", "namespace": "a"}, "spec": {}},
        {"metadata": {"name": "p2", "namespace": "a"}, "spec": {}}]}
    ns_list = {"apiVersion": "v1", "kind": "NamespaceList", "items": [
        {"metadata": {"name": "a", "labels": {"team": "x"}}}]}
    mixed = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa", "namespace": "a"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "a"},
         "spec": {"template": {"metadata": {"labels": {"app": "d"}}}}}]}
    write(tmp_path / "pods.json", json.dumps(pod_list, indent=2))
    write(tmp_path / "ns.json", json.dumps(ns_list))
    write(tmp_path / "mixed.yaml", json.dumps(mixed))
    state = load_snapshot(tmp_path)
    assert state.counts() == {"Namespace": 1, "Pod": 2, "ServiceAccount": 1, "Deployment": 1}
    assert state.get("Namespace", "", "a")["metadata"]["labels"] == {"team": "x"}


def test_every_modelled_kind_including_both_istio_versions(tmp_path):
    docs = [
        ("v1", "Service", True), ("apps/v1", "StatefulSet", True), ("apps/v1", "DaemonSet", True),
        ("apps/v1", "ReplicaSet", True), ("v1", "ReplicationController", True), ("batch/v1", "Job", True),
        ("batch/v1", "CronJob", True), ("networking.k8s.io/v1", "NetworkPolicy", True),
        ("cilium.io/v2", "CiliumNetworkPolicy", True), ("cilium.io/v2", "CiliumClusterwideNetworkPolicy", False),
        ("security.istio.io/v1", "AuthorizationPolicy", True),
        ("security.istio.io/v1beta1", "PeerAuthentication", True),
    ]
    text = "---\n".join(
        json.dumps({"apiVersion": v, "kind": k, "metadata": {"name": k.lower(), **({"namespace": "x"} if ns else {})}})
        + "\n" for v, k, ns in docs)
    text += "---\n" + json.dumps({"apiVersion": "security.istio.io/v1beta1", "kind": "AuthorizationPolicy",
                                  "metadata": {"name": "old", "namespace": "x"}}) + "\n"
    state = load_snapshot(write(tmp_path / "all.yaml", text))
    counts = state.counts()
    assert counts["AuthorizationPolicy"] == 2
    assert all(counts.get(k) for _, k, _ in docs)


def test_unknown_kinds_and_foreign_groups_are_counted_and_skipped(tmp_path):
    text = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: a}\n---\n"
            "apiVersion: crd.projectcalico.org/v1\nkind: NetworkPolicy\nmetadata: {name: calico, namespace: a}\n")
    state = load_snapshot(write(tmp_path / "x.yaml", text))
    assert state.skipped_kinds == {"ConfigMap": 1, "NetworkPolicy (crd.projectcalico.org/v1)": 1}
    assert not state.objects["NetworkPolicy"]


def test_absent_namespace_is_created_with_its_metadata_name_label(tmp_path):
    state = load_snapshot(write(tmp_path / "p.yaml", POD.format(name="one", ns="ghost")))
    ns = state.get("Namespace", "", "ghost")
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "ghost"}


def test_object_without_namespace_lands_in_default(tmp_path):
    state = load_snapshot(write(tmp_path / "p.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: solo}\n"))
    assert state.get("Pod", "default", "solo")["metadata"]["namespace"] == "default"
    assert state.get("Namespace", "", "default") is not None


def test_a_broken_document_is_reported_with_its_line_and_the_rest_loads(tmp_path):
    broken = (POD.format(name="before", ns="a") + "---\n"
              "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n" + "---\n"
              + POD.format(name="after", ns="a"))
    write(tmp_path / "broken.yaml", broken)
    write(tmp_path / "bad.json", '{"kind": "Pod",\n "metadata": }')
    write(tmp_path / "good.yaml", POD.format(name="other", ns="a"))
    state = load_snapshot(tmp_path)
    assert sorted(name for _, name in state.objects["Pod"]) == ["after", "before", "other"]
    assert len(state.warnings) == 2
    json_warning, yaml_warning = sorted(state.warnings)
    assert json_warning.startswith(f"{tmp_path / 'bad.json'}:2: invalid JSON")
    assert yaml_warning.startswith(f"{tmp_path / 'broken.yaml'}:")
    line = int(yaml_warning.split(":")[1])
    assert 12 <= line <= 14  # the broken document starts at line 11; PyYAML points into it


def test_non_object_documents_and_nameless_objects_are_warnings(tmp_path):
    write(tmp_path / "a.yaml", "- just\n- a list\n")
    write(tmp_path / "b.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {}\n")
    state = load_snapshot(tmp_path)
    assert len(state.warnings) == 2
    assert not state.objects["Pod"]


def test_several_paths_and_a_missing_one(tmp_path):
    a = write(tmp_path / "a.yaml", POD.format(name="one", ns="x"))
    b = write(tmp_path / "b.yaml", POD.format(name="two", ns="x"))
    assert len(load_snapshot([a, b]).objects["Pod"]) == 2
    with pytest.raises(HubbleTuiError, match="no such file"):
        load_snapshot([a, tmp_path / "missing"])


def test_conformance_manifests_load_cleanly():
    from paths import shared_or_skip

    root = shared_or_skip("conformance", "netpol-analyzer")
    state = load_snapshot(root / "multiple_topology_resources_1" / "manifests")
    assert state.warnings == []
    assert len(state.objects["Pod"]) == 32
