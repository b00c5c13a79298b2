"""Kubernetes NetworkPolicy as Cilium enforces it (../shared/policy-semantics.md §2)."""

from __future__ import annotations

import pytest
import yaml

from hubbletui.cluster.model import ClusterState
from hubbletui.cluster.snapshot import add_object
from hubbletui.policy.engine import PolicyEngine

BASE = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {env: prod}}
---
apiVersion: v1
kind: Namespace
metadata: {name: ops, labels: {env: tools}}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop, labels: {app: api}}
spec:
  containers:
  - name: api
    ports:
    - {name: web, containerPort: 8080}
    - {name: stats, containerPort: 8125, protocol: UDP}
    - {name: sig, containerPort: 9000, protocol: SCTP}
status: {podIP: 10.1.0.5}
---
apiVersion: v1
kind: Pod
metadata: {name: front, namespace: shop, labels: {app: front}}
spec: {containers: [{name: c}]}
status: {podIP: 10.1.0.6}
---
apiVersion: v1
kind: Pod
metadata: {name: monitor, namespace: ops, labels: {app: monitor}}
spec: {containers: [{name: c}]}
status: {podIP: 10.1.1.7}
---
apiVersion: v1
kind: Pod
metadata: {name: front, namespace: ops, labels: {app: front}}
spec: {containers: [{name: c}]}
status: {podIP: 10.1.1.8}
"""


API = "podSelector: {matchLabels: {app: api}}"
FROM_FRONT = "{from: [{podSelector: {matchLabels: {app: front}}}]}"


def engine(*specs: str, **options) -> PolicyEngine:
    state = ClusterState()
    for obj in yaml.safe_load_all(BASE):
        add_object(state, obj)
    for i, spec in enumerate(specs):
        body = yaml.safe_load(spec)
        add_object(state, {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                           "metadata": {"name": f"np{i}", "namespace": "shop"}, "spec": body})
    return PolicyEngine(state, **options)


def verdict(eng: PolicyEngine, src: str, dst: str, port: int = 8080, proto: str = "TCP") -> str:
    return eng.trace(src, dst, port, proto).verdict


def test_policy_types_default_to_ingress_only():
    eng = engine(f"{{{API}, ingress: [{FROM_FRONT}]}}")
    assert verdict(eng, "shop/front", "shop/api") == "allowed"
    assert verdict(eng, "ops/monitor", "shop/api") == "denied"
    assert verdict(eng, "shop/api", "ops/monitor") == "allowed"  # egress not isolated


def test_egress_rules_without_policy_types_isolate_both_directions():
    eng = engine(f"{{{API}, egress: [{{to: [{{podSelector: {{matchLabels: {{app: front}}}}}}]}}]}}")
    assert verdict(eng, "shop/api", "shop/front") == "allowed"
    assert verdict(eng, "shop/api", "ops/monitor") == "denied"
    assert verdict(eng, "shop/front", "shop/api") == "denied"  # ingress: listed by default, no rules


def test_egress_only_policy_types_leave_ingress_open():
    eng = engine("{podSelector: {matchLabels: {app: api}}, policyTypes: [Egress]}")
    assert verdict(eng, "shop/api", "shop/front") == "denied"
    assert verdict(eng, "shop/front", "shop/api") == "allowed"


def test_rules_of_an_unlisted_type_are_ignored_and_noted():
    eng = engine("{podSelector: {matchLabels: {app: api}}, policyTypes: [Egress], "
                 "ingress: [{from: [{podSelector: {matchLabels: {app: front}}}]}], egress: [{}]}")
    assert verdict(eng, "ops/monitor", "shop/api") == "allowed"
    assert any("spec.ingress is ignored" in n for n in eng.policies[next(iter(eng.policies))].notes)


def test_empty_from_admits_everyone_including_world():
    eng = engine("{podSelector: {}, ingress: [{ports: [{port: 8080}]}]}")
    assert verdict(eng, "world", "shop/api") == "allowed"
    assert verdict(eng, "ops/monitor", "shop/api") == "allowed"
    assert verdict(eng, "ops/monitor", "shop/api", 8081) == "denied"


def test_namespace_and_pod_selector_in_one_peer_are_anded():
    eng = engine("""{podSelector: {matchLabels: {app: api}}, ingress: [{from: [
        {namespaceSelector: {matchLabels: {env: tools}}, podSelector: {matchLabels: {app: monitor}}}]}]}""")
    assert verdict(eng, "ops/monitor", "shop/api") == "allowed"
    assert verdict(eng, "ops/front", "shop/api") == "denied"
    assert verdict(eng, "shop/front", "shop/api") == "denied"


def test_separate_peers_are_ored():
    eng = engine("""{podSelector: {matchLabels: {app: api}}, ingress: [{from: [
        {namespaceSelector: {matchLabels: {env: tools}}}, {podSelector: {matchLabels: {app: monitor}}}]}]}""")
    assert verdict(eng, "ops/front", "shop/api") == "allowed"  # any pod of ops
    assert verdict(eng, "shop/front", "shop/api") == "denied"  # shop pods need app=monitor


def test_empty_namespace_selector_is_every_pod_but_not_world():
    eng = engine("{podSelector: {matchLabels: {app: api}}, ingress: [{from: [{namespaceSelector: {}}]}]}")
    assert verdict(eng, "ops/front", "shop/api") == "allowed"
    assert verdict(eng, "world", "shop/api") == "denied"


def test_namespace_selector_with_not_in_still_needs_a_pod():
    eng = engine("""{podSelector: {matchLabels: {app: api}}, ingress: [{from: [{namespaceSelector:
        {matchExpressions: [{key: env, operator: NotIn, values: [prod]}]}}]}]}""")
    assert verdict(eng, "ops/front", "shop/api") == "allowed"
    assert verdict(eng, "shop/front", "shop/api") == "denied"
    assert verdict(eng, "world", "shop/api") == "denied"


def test_ip_block_with_except_never_matches_pods():
    eng = engine("""{podSelector: {matchLabels: {app: api}}, policyTypes: [Egress], egress: [{to: [
        {ipBlock: {cidr: 10.0.0.0/8, except: [10.1.1.0/24]}}]}]}""")
    assert verdict(eng, "shop/api", "10.9.9.9") == "allowed"
    assert verdict(eng, "shop/api", "10.1.1.99") == "denied"
    assert verdict(eng, "shop/api", "shop/front") == "denied"  # 10.1.0.6 is in the block, but a pod
    assert verdict(eng, "shop/api", "10.1.0.6") == "denied"


def test_ports_default_to_tcp():
    eng = engine("{podSelector: {matchLabels: {app: api}}, ingress: [{ports: [{port: 8125}]}]}")
    assert verdict(eng, "shop/front", "shop/api", 8125, "TCP") == "allowed"
    assert verdict(eng, "shop/front", "shop/api", 8125, "UDP") == "denied"


def test_protocol_without_port_is_every_port_of_it():
    eng = engine("{podSelector: {matchLabels: {app: api}}, ingress: [{ports: [{protocol: UDP}]}]}")
    assert verdict(eng, "shop/front", "shop/api", 1, "UDP") == "allowed"
    assert verdict(eng, "shop/front", "shop/api", 65535, "UDP") == "allowed"
    assert verdict(eng, "shop/front", "shop/api", 80, "TCP") == "denied"


def test_no_ports_is_every_port_and_protocol():
    eng = engine("{podSelector: {matchLabels: {app: api}}, ingress: [{from: [{podSelector: {}}]}]}")
    for proto in ("TCP", "UDP", "SCTP", "ICMPv4"):
        assert verdict(eng, "shop/front", "shop/api", 7, proto) == "allowed"


@pytest.mark.parametrize("port, proto, allowed", [
    (8000, "TCP", True), (8999, "TCP", True), (9000, "TCP", False), (7999, "TCP", False), (8500, "UDP", False)])
def test_end_port(port, proto, allowed):
    eng = engine("{podSelector: {matchLabels: {app: api}}, ingress: [{ports: [{port: 8000, endPort: 8999}]}]}")
    assert verdict(eng, "shop/front", "shop/api", port, proto) == ("allowed" if allowed else "denied")


def test_named_ports_resolve_with_their_protocol():
    eng = engine(f"{{{API}, ingress: [{{ports: [{{port: web}}, {{port: stats, protocol: UDP}}]}}]}}")
    assert verdict(eng, "shop/front", "shop/api", 8080) == "allowed"
    assert verdict(eng, "shop/front", "shop/api", 8125, "UDP") == "allowed"
    assert verdict(eng, "shop/front", "shop/api", 8125, "TCP") == "denied"
    # a name the pod has, but with another protocol, gives nothing
    eng = engine("{podSelector: {matchLabels: {app: api}}, ingress: [{ports: [{port: sig, protocol: UDP}]}]}")
    assert verdict(eng, "shop/front", "shop/api", 9000, "UDP") == "denied"
    assert verdict(eng, "shop/front", "shop/api", 9000, "SCTP") == "denied"
    result = eng.trace("shop/front", "shop/api", 9000, "SCTP")
    assert "sig=9000/SCTP" in result.layer("ingress").nearest[0].lacks[0].text


def test_sctp():
    eng = engine("{podSelector: {matchLabels: {app: api}}, ingress: [{ports: [{port: sig, protocol: SCTP}]}]}")
    assert verdict(eng, "shop/front", "shop/api", 9000, "SCTP") == "allowed"
    assert verdict(eng, "shop/front", "shop/api", 9000, "TCP") == "denied"


def test_named_egress_port_resolves_across_the_cluster():
    """Cilium resolves an egress named port through the cluster-wide map of every pod's named ports
    (pkg/policy/types NamedPortMultiMap.GetNamedPort), not on the destination: 8080 is "web" somewhere, so it
    is allowed to a pod that has no port of that name. NetworkPolicy tools resolve it on the destination."""
    spec = "{podSelector: {matchLabels: {app: front}}, policyTypes: [Egress], egress: [{ports: [{port: web}]}]}"
    eng = engine(spec)
    assert verdict(eng, "shop/front", "shop/api", 8080) == "allowed"
    assert verdict(eng, "shop/front", "ops/monitor", 8080) == "allowed"
    eng = engine(spec, egress_named_ports="destination")
    assert verdict(eng, "shop/front", "ops/monitor", 8080) == "denied"  # monitor has no port named web


def test_policies_are_additive():
    eng = engine(f"{{{API}, ingress: [{FROM_FRONT}]}}",
                 f"{{{API}, ingress: [{{from: [{{namespaceSelector: {{matchLabels: {{env: tools}}}}}}]}}]}}")
    assert verdict(eng, "shop/front", "shop/api") == "allowed"
    assert verdict(eng, "ops/monitor", "shop/api") == "allowed"
    assert verdict(eng, "world", "shop/api") == "denied"


def test_denial_explains_the_missing_label_and_namespace():
    eng = engine("""{podSelector: {matchLabels: {app: api}}, ingress: [{from: [
        {namespaceSelector: {matchLabels: {env: tools}}, podSelector: {matchLabels: {app: monitor}}}],
        ports: [{port: 8080}]}]}""")
    result = eng.trace("shop/front", "shop/api", 8080)
    near = result.layer("ingress").nearest[0]
    texts = sorted(lack.text for lack in near.lacks)
    assert texts == ["label app=monitor", "namespace label env=tools"]
    assert near.ref == "NetworkPolicy/shop/np0" and near.path == "spec.ingress[0]"
