"""`suggest` on four purpose-built clusters: the first fix of each group is the expected one, and applying it to
the snapshot makes `hubbletui trace` answer allowed."""

from __future__ import annotations

import pytest
import scenario_flows
from suggest_support import (
    SCENARIOS,
    apply_fix,
    group_for,
    layer_verdicts,
    scenario,
    suggest_scenario,
    trace,
    validate_every_suggestion,
    validators,
)

assert validate_every_suggestion  # autouse fixture: every suggestion below is schema-checked


@pytest.mark.parametrize("name", sorted(scenario_flows.FLOWS))
def test_recordings_are_current(name):
    assert (SCENARIOS / name / "flows.jsonl").read_bytes() == scenario_flows.build(name), \
        "run: python tests/scenario_flows.py"


def test_label_regime_first_fix_is_the_label_on_the_pod_template(tmp_path):
    cluster, flows = scenario("label-regime")
    _, groups, _ = suggest_scenario(cluster, flows)
    group = group_for(groups, "shop/billing", "shop/postgres", 5432)
    best = group.suggestions[0]
    assert best.kind == "label-change" and best.checked
    assert best.target.to_dict() == {"kind": "Deployment", "namespace": "shop", "name": "billing"}
    assert best.patches[0].type == "strategic"
    assert best.patches[0].body == {"spec": {"template": {"metadata": {"labels": {"role": "db-client"}}}}}
    assert best.patches[0].command() == (
        "kubectl patch deployments.apps billing -n shop --type=strategic -p "
        "'{\"spec\":{\"template\":{\"metadata\":{\"labels\":{\"role\":\"db-client\"}}}}}'")
    assert best.blast.count == 0 and best.new_objects == []
    # the alternatives are new policies: each needs the ingress side too (postgres admits only db clients)
    assert [s.kind for s in group.suggestions[1:]] and all(s.kind == "new-policy" for s in group.suggestions[1:])
    before = trace(cluster, "shop/billing", "shop/postgres", "5432/tcp")
    assert layer_verdicts(before) == {"egress": "denied", "ingress": "denied"}
    after = trace(apply_fix(cluster, best, tmp_path / "fixed"), "shop/billing", "shop/postgres", "5432/tcp")
    assert after["verdict"] == "allowed"


def test_label_regime_never_suggests_a_filtered_label(tmp_path):
    cluster, flows = scenario("label-regime")
    _, groups, _ = suggest_scenario(cluster, flows)
    for group in groups:
        for s in group.suggestions:
            text = str([c.to_dict() for c in s.changes])
            assert "pod-template-hash" not in text and "controller-revision-hash" not in text


def test_team_namespaces_ranks_the_narrow_patch_before_the_namespace_label(tmp_path):
    cluster, flows = scenario("team-namespaces")
    _, groups, _ = suggest_scenario(cluster, flows)
    group = group_for(groups, "team-a/frontend", "team-b/api", 8080)
    kinds = [(s.kind, s.blast.count) for s in group.suggestions]
    assert kinds[:3] == [("rule-patch", 0), ("new-policy", 0), ("label-change", 1)], kinds
    patch, new, label = group.suggestions[:3]
    assert patch.patches[0].target.to_dict() == {"kind": "CiliumNetworkPolicy", "namespace": "team-b",
                                                 "name": "api-from-partners"}
    assert patch.patches[0].body == [{"op": "add", "path": "/spec/ingress/0/fromEndpoints/-", "value": {
        "matchLabels": {"app": "frontend", "k8s:io.kubernetes.pod.namespace": "team-a"}}}]
    assert new.new_objects[0]["spec"]["endpointSelector"] == {"matchLabels": {"app": "api"}}
    assert new.new_objects[0]["spec"]["ingress"] == [{
        "fromEndpoints": [{"matchLabels": {"app": "frontend", "k8s:io.kubernetes.pod.namespace": "team-a"}}],
        "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}]}]
    # the namespace label would let every workload of team-a in: its blast radius says which
    assert label.target.to_dict() == {"kind": "Namespace", "namespace": "", "name": "team-a"}
    assert label.patches[0].body == {"metadata": {"labels": {"partner-of-b": "true"}}}
    assert [p.text for p in label.blast.pairs] == ["team-a/batch -> team-b/api TCP 8080"]
    for s in (patch, new, label):
        fixed = apply_fix(cluster, s, tmp_path / s.id)
        assert trace(fixed, "team-a/frontend", "team-b/api", "8080")["verdict"] == "allowed"
    batch = trace(apply_fix(cluster, label, tmp_path / "label"), "team-a/batch", "team-b/api", "8080")
    assert batch["verdict"] == "allowed"  # the blast radius was real
    assert trace(apply_fix(cluster, patch, tmp_path / "p2"), "team-a/batch", "team-b/api", "8080")["verdict"] == \
        "denied"


def test_netpol_only_cluster_gets_networkpolicies(tmp_path):
    cluster, flows = scenario("netpol-only")
    _, groups, _ = suggest_scenario(cluster, flows)
    port_group = group_for(groups, "web/frontend", "web/api", 8443)
    best = port_group.suggestions[0]
    assert best.kind == "rule-patch"
    assert best.patches[0].target.to_dict() == {"kind": "NetworkPolicy", "namespace": "web",
                                                "name": "api-allow-frontend"}
    assert best.patches[0].body == [{"op": "add", "path": "/spec/ingress/0/ports/-",
                                     "value": {"port": 8443, "protocol": "TCP"}}]
    fixed = apply_fix(cluster, best, tmp_path / "port")
    assert trace(fixed, "web/frontend", "web/api", "8443")["verdict"] == "allowed"
    assert trace(fixed, "web/frontend", "web/api", "8080")["verdict"] == "allowed"

    new_group = group_for(groups, "web/admin", "web/reports", 8080)
    new = new_group.suggestions[0]
    assert new.kind == "new-policy"
    assert new.new_objects == [{
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "allow-admin-to-reports-8080-tcp-ingress", "namespace": "web",
                     "labels": {"app.kubernetes.io/managed-by": "hubbletui"}},
        "spec": {"podSelector": {"matchLabels": {"app": "reports"}}, "policyTypes": ["Ingress"],
                 "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "admin"}}}],
                              "ports": [{"port": 8080, "protocol": "TCP"}]}]}}]
    fixed = apply_fix(cluster, new, tmp_path / "new")
    assert trace(fixed, "web/admin", "web/reports", "8080")["verdict"] == "allowed"
    assert trace(fixed, "web/frontend", "web/reports", "8080")["verdict"] == "denied"


def test_netpol_only_cluster_can_ask_for_cilium_policies(tmp_path):
    cluster, flows = scenario("netpol-only")
    _, groups, _ = suggest_scenario(cluster, flows, fmt="all")
    kinds = {obj["kind"] for g in groups for s in g.suggestions for obj in s.new_objects}
    assert kinds == {"NetworkPolicy", "CiliumNetworkPolicy"}


def test_istio_mesh_adds_the_principal_to_the_allow_policy(tmp_path):
    cluster, flows = scenario("istio-mesh")
    _, groups, _ = suggest_scenario(cluster, flows)
    group = group_for(groups, "bank/auditor", "bank/ledger", 7000)
    assert group.case.layer == "istio" and group.case.reason == "ISTIO_AUTHZ_DENIED"
    best = group.suggestions[0]
    assert best.kind == "istio-authz"
    assert best.patches[0].target.to_dict() == {"kind": "AuthorizationPolicy", "namespace": "bank",
                                                "name": "ledger-allow"}
    assert best.patches[0].body == [{"op": "add", "path": "/spec/rules/0/from/0/source/principals/-",
                                     "value": "cluster.local/ns/bank/sa/auditor"}]
    new = group.suggestions[1]
    assert new.new_objects[0]["spec"] == {
        "selector": {"matchLabels": {"app": "ledger"}}, "action": "ALLOW",
        "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/bank/sa/auditor"]}}],
                   "to": [{"operation": {"ports": ["7000"]}}]}]}
    assert layer_verdicts(trace(cluster, "bank/auditor", "bank/ledger", "7000"))["istio"] == "denied"
    for s in (best, new):
        answer = trace(apply_fix(cluster, s, tmp_path / s.id), "bank/auditor", "bank/ledger", "7000")
        assert answer["verdict"] == "allowed"
    # teller, admitted before, still is
    assert trace(apply_fix(cluster, best, tmp_path / "t"), "bank/teller", "bank/ledger", "7000")["verdict"] == \
        "allowed"


def test_schemas_validate_every_scenario_fix():
    if validators() is None:
        pytest.skip("../shared/schemas is not here: CRD schema validation needs the team's shared folder")
    from suggest_support import VALIDATED

    VALIDATED.clear()
    for name in sorted(scenario_flows.FLOWS):
        suggest_scenario(*scenario(name), fmt="all")
    assert {v.split()[0] for v in VALIDATED} >= {"CiliumNetworkPolicy", "NetworkPolicy", "AuthorizationPolicy"}
