"""The parts of `suggest` that the scenarios do not reach on their own: a candidate that fails its check is never
shown, a new policy that would newly isolate a pod carries its observed traffic (or is not offered), labels
Cilium filters or a workload's selector owns are never suggested, output cannot be hijacked by names, files are
replaced atomically, and the TUI's entry points."""

from __future__ import annotations

import os

import pytest
import scenario_flows
import yaml
from suggest_support import scenario, suggest_scenario, validate_every_suggestion

from hubbletui.cluster.model import ClusterState
from hubbletui.errors import HubbleTuiError
from hubbletui.flows.decode import event_from_json
from hubbletui.policy.engine import PolicyEngine
from hubbletui.diagnose.diagnosis import diagnose
from hubbletui.diagnose.explain import explain_group, refusal_group
from hubbletui.diagnose.mesh_refusals import MeshRefusalDetector
from hubbletui import files as atomic
from hubbletui.render.fixes_md import fenced
from hubbletui.render.fixes_md import text as md_text
from hubbletui.render.fixes_yaml import comment, render_yaml
from hubbletui.suggest import jsonpatch
from hubbletui.suggest.candidates_label import label_options
from hubbletui.suggest.candidates_policy import new_policy_options
from hubbletui.diagnose.groups import DropGroup, group_drops
from hubbletui.flows.conn import Conn, GroupKey, Port
from hubbletui.suggest.fixes import suggest_for_case
from hubbletui.suggest.model import (
    LABEL_CHANGE,
    NEW_POLICY,
    BlastRadius,
    Change,
    GroupFixes,
    NewPair,
    ObjectRef,
    Suggestion,
)
from hubbletui.suggest.observed import ObservedTraffic
from hubbletui.suggest.rank import ranked

assert validate_every_suggestion  # autouse fixture: every suggestion below is schema-checked


def workload(ns: str, name: str, labels: dict, ip: str) -> list[dict]:
    pod_hash = "5c6d7e8f9a"
    template = {"metadata": {"labels": labels}, "spec": {"serviceAccountName": name,
                                                         "containers": [{"name": name, "image": name}]}}
    return [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
             "spec": {"selector": {"matchLabels": {"app": labels["app"]}}, "template": template}},
            {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": f"{name}-{pod_hash}-x1y2z", "namespace": ns,
                          "labels": {**labels, "pod-template-hash": pod_hash},
                          "ownerReferences": [{"kind": "ReplicaSet", "name": f"{name}-{pod_hash}",
                                               "controller": True}]},
             "spec": template["spec"], "status": {"phase": "Running", "podIP": ip}}]


def cnp(name: str, spec: dict, ns: str = "app") -> dict:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


def cluster(*extra: dict) -> tuple[list[dict], PolicyEngine]:
    objects = [{"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}}
               for ns in ("app", "kube-system")]
    objects += workload("app", "a", {"app": "a"}, "10.9.0.1") + workload("app", "b", {"app": "b"}, "10.9.0.2")
    objects += workload("app", "c", {"app": "c"}, "10.9.0.3")
    objects += workload("kube-system", "coredns", {"app": "coredns", "k8s-app": "kube-dns"}, "10.9.9.9")
    objects += list(extra)
    state = ClusterState()
    for obj in objects:
        state.upsert(obj)
    return objects, PolicyEngine(state)


def flows(objects: list[dict], table: list[tuple]) -> list:
    """Flows as the scenario recordings make them (see tests/scenario_flows.py)."""
    world = scenario_flows.Cluster(objects)
    out = []
    t = scenario_flows.T0_NS
    for what, src, dst, port, protocol, *rest in table:
        a = world.endpoint(src) if "/" in src else ({"identity": 1, "labels": ["reserved:host"]}, src)
        b = world.endpoint(dst) if "/" in dst else ({"identity": 1, "labels": ["reserved:host"]}, dst)
        if what == "drop":
            line = scenario_flows._flow(t, a, b, 40001, port, protocol, ["SYN"], False, "DROPPED", rest[0])
        else:
            line = scenario_flows._flow(t, a, b, 40001, port, protocol, ["SYN"] if protocol == "TCP" else None, False)
        out.append(event_from_json(line))
        t += 1_000_000
    return out


PORT_80 = [{"ports": [{"port": "80", "protocol": "TCP"}]}]
B_ADMITS_TRUSTED = cnp("b-ingress", {"endpointSelector": {"matchLabels": {"app": "b"}}, "ingress": [
    {"fromEndpoints": [{"matchLabels": {"role": "trusted"}}], "toPorts": PORT_80}]})
# whoever is trusted may only talk to b: the label that opens b would also isolate the trusted pod's egress
TRUSTED_EGRESS = cnp("trusted-egress", {"endpointSelector": {"matchLabels": {"role": "trusted"}}, "egress": [
    {"toEndpoints": [{"matchLabels": {"app": "b"}}], "toPorts": PORT_80}]})


def test_a_candidate_that_breaks_working_traffic_is_never_shown():
    objects, engine = cluster(B_ADMITS_TRUSTED, TRUSTED_EGRESS)
    recorded = flows(objects, [("forward", "app/a", "app/c", 9000, "TCP"),
                               ("drop", "app/a", "app/b", 80, "TCP", "INGRESS")])
    (case,) = [explain_group(engine, g) for g in group_drops(recorded, engine)]
    fixes = suggest_for_case(engine, case, recorded)
    kinds = [s.kind for s in fixes.suggestions]
    assert LABEL_CHANGE not in kinds and NEW_POLICY in kinds and "rule-patch" in kinds
    assert fixes.rejected == 1
    # without the working a -> c connection in the input, the label is fine (nothing to break)
    alone = suggest_for_case(engine, case, recorded[1:])
    assert LABEL_CHANGE in [s.kind for s in alone.suggestions] and alone.rejected == 0


def test_the_check_failure_is_said_when_no_candidate_survives():
    objects, engine = cluster(B_ADMITS_TRUSTED, TRUSTED_EGRESS)
    recorded = flows(objects, [("forward", "app/a", "app/c", 9000, "TCP"),
                               ("drop", "app/a", "app/b", 80, "TCP", "INGRESS")])
    (case,) = [explain_group(engine, g) for g in group_drops(recorded, engine)]
    fixes = suggest_for_case(engine, case, recorded, fmt="istio")  # only Istio fixes: nothing else to try
    assert fixes.suggestions == []
    assert any("--format istio" in reason for reason in fixes.not_offered)


def test_a_new_policy_that_newly_isolates_keeps_dns_and_observed_traffic():
    objects, engine = cluster()
    recorded = flows(objects, [("forward", "app/a", "app/c", 9000, "TCP"),
                               ("forward", "app/a", "kube-system/coredns", 53, "UDP")])
    seen = ObservedTraffic(recorded).baseline(engine)
    a, b = engine.resolve("app/a"), engine.resolve("app/b")
    assert not engine.is_isolated(a, "egress")
    (option,), reasons = new_policy_options(engine, "egress", a, b, 80, "TCP", a, b, False, seen)
    assert reasons == []
    (change,) = option
    egress = change.new_object["spec"]["egress"]
    assert egress[0] == {"toEndpoints": [{"matchLabels": {"app": "b"}}],
                         "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}]}]}
    assert egress[1]["toEndpoints"] == [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system",
                                                         "k8s-app": "kube-dns"}}]  # DNS first
    assert egress[2] == {"toEndpoints": [{"matchLabels": {"app": "c"}}],
                         "toPorts": [{"ports": [{"port": "9000", "protocol": "TCP"}]}]}
    assert any("egress default deny" in note for note in change.notes)
    view = engine.what_if(upserts=[change.new_object])
    for dst, port, proto in (("app/b", 80, "TCP"), ("app/c", 9000, "TCP"), ("kube-system/coredns", 53, "UDP")):
        assert view.trace("app/a", dst, port, proto).layer("egress").verdict == "allowed"
    assert view.trace("app/a", "app/c", 8080, "TCP").layer("egress").verdict == "denied"


def test_a_new_policy_is_not_offered_when_it_would_cut_traffic_it_cannot_name():
    objects, engine = cluster()
    recorded = flows(objects, [("forward", "app/a", "192.168.1.1", 10250, "TCP")])  # to the host
    seen = ObservedTraffic(recorded).baseline(engine)
    a, b = engine.resolve("app/a"), engine.resolve("app/b")
    options, reasons = new_policy_options(engine, "egress", a, b, 80, "TCP", a, b, True, seen)
    assert options == []
    assert reasons == [("no NetworkPolicy offered: it would put app/a into egress default deny and cut its observed "
                       "traffic app/a -> host 10250/TCP, which the policy cannot name")]


def test_labels_cilium_filters_or_the_selector_owns_are_not_suggested():
    hash_rule = cnp("by-hash", {"endpointSelector": {"matchLabels": {"app": "b"}}, "ingress": [
        {"fromEndpoints": [{"matchLabels": {"pod-template-hash": "abc"}}]}]})
    app_rule = cnp("by-app", {"endpointSelector": {"matchLabels": {"app": "b"}}, "ingress": [
        {"fromEndpoints": [{"matchLabels": {"app": "friend"}}]}]})
    _, engine = cluster(hash_rule, app_rule)
    a, b = engine.resolve("app/a"), engine.resolve("app/b")
    options, reasons = label_options(engine, "ingress", b, a, b, 80, "TCP")
    assert options == []
    assert reasons == ['Deployment app/a: app is part of its selector and cannot change (a rule wants app="friend")']


def test_names_cannot_break_out_of_comments_or_markdown():
    evil = "x\nkind: Secret\u2028metadata: {name: pwned}\x1b[31m"
    assert comment(evil).count("\n") == 0 and "\u2028" not in comment(evil) and "\x1b" not in comment(evil)
    change = Change(NEW_POLICY, ObjectRef("CiliumNetworkPolicy", "app", "p"), f"allow {evil}",
                    ({"kind": "CiliumNetworkPolicy"},), 1,
                    new_object={"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
                                "metadata": {"name": "p", "namespace": "app"},
                                "spec": {"description": evil, "endpointSelector": {}, "ingress": [{}]}})
    s = Suggestion((change,), evil, BlastRadius((NewPair(evil, "app/b", "TCP 80", "cilium"),)), (evil,), rank=1)
    (sample,) = flows(cluster()[0], [("drop", "app/a", "app/b", 80, "TCP", "INGRESS")])
    key = GroupKey(Conn(evil, "app/b", Port(80, "TCP")), "DROPPED", "POLICY_DENIED")
    group = GroupFixes(DropGroup(key, 1, 0, 0, sample, layer="ingress"), evil, [s])
    docs = [d for d in yaml.safe_load_all(render_yaml([group])) if d]
    assert len(docs) == 1 and docs[0]["kind"] == "CiliumNetworkPolicy" and docs[0]["spec"]["description"] == evil
    assert "\\<" in md_text("<script>") and fenced("a ``` b", "yaml").startswith("````yaml\n")
    assert md_text("# not a heading").startswith("\\#") and md_text("1. not a list").startswith("1\\.")


def test_atomic_write_keeps_the_old_file_when_the_rename_fails(tmp_path, monkeypatch):
    target = tmp_path / "fix.yaml"
    atomic.write_atomic(target, "old\n")
    assert target.read_text() == "old\n"

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", refuse)
    with pytest.raises(HubbleTuiError, match="No space left on device"):
        atomic.write_atomic(target, "new\n")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["fix.yaml"]  # the temporary file is gone too


def test_json_patch_pointers_escape_and_apply():
    assert jsonpatch.pointer(["metadata", "labels", "a/b~c"]) == "/metadata/labels/a~1b~0c"
    assert jsonpatch.tokens_of_path("specs[1].ingress[0]") == ["specs", 1, "ingress", 0]
    obj = {"spec": {"ingress": [{"toPorts": [{"ports": []}]}]}}
    patched = jsonpatch.apply(obj, [{"op": "add", "path": "/spec/ingress/0/toPorts/0/ports/-", "value": {"port": "1"}},
                                    {"op": "add", "path": "/spec/ingress/0/fromEndpoints", "value": [{}]}])
    assert patched == {"spec": {"ingress": [{"toPorts": [{"ports": [{"port": "1"}]}], "fromEndpoints": [{}]}]}}
    assert obj == {"spec": {"ingress": [{"toPorts": [{"ports": []}]}]}}  # the original is left alone


def test_ranking_blast_radius_then_size_then_labels_first():
    def make(kind: str, size: int, pairs: int) -> Suggestion:
        change = Change(kind, ObjectRef("Deployment", "app", f"{kind}-{size}-{pairs}"), kind, (), size)
        blast = BlastRadius(tuple(NewPair("a", f"b{i}", "TCP 1", "cilium") for i in range(pairs)))
        return Suggestion((change,), "", blast)

    order = ranked([make("new-policy", 1, 0), make("label-change", 1, 0), make("rule-patch", 1, 1),
                    make("new-policy", 0, 2), make("istio-authz", 1, 0)])
    assert [(s.kind, s.rank) for s in order] == [("label-change", 1), ("istio-authz", 2), ("new-policy", 3),
                                                 ("rule-patch", 4), ("new-policy", 5)]


def test_tui_entry_points_take_explained_groups_and_mesh_refusals():
    cluster_file, recording = scenario("label-regime")
    engine, _, _ = suggest_scenario(cluster_file, recording)
    from hubbletui.flows.recording import read_events

    events = list(read_events(str(recording)))
    (group,) = diagnose(engine, events).groups
    assert [s.kind for s in suggest_for_case(engine, group, events).suggestions][:1] == ["label-change"]

    cluster_file, recording = scenario("istio-mesh")
    engine, _, _ = suggest_scenario(cluster_file, recording)
    detector = MeshRefusalDetector(engine)
    events = list(read_events(str(recording)))
    detector.observe_events(events)
    (refusal,) = detector.refusals()
    stats = detector.tracker.group(refusal.conn)
    group = refusal_group(refusal, events[0], (stats.source, stats.destination))
    assert [s.kind for s in suggest_for_case(engine, group, events).suggestions] == ["istio-authz", "istio-authz"]
