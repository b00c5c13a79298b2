"""Cilium's semantics, rule by rule (../shared/policy-semantics.md §1), through PolicyEngine.trace."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hubbletui.cluster.model import ClusterState
from hubbletui.cluster.snapshot import add_object, load_snapshot
from hubbletui.policy.engine import PolicyEngine
from paths import FIXTURES

TRUTH_TABLE = FIXTURES / "clusters" / "deny-truth-table"

BASE = """
apiVersion: v1
kind: Namespace
metadata: {name: prod, labels: {team: a, kubernetes.io/metadata.name: prod}}
---
apiVersion: v1
kind: Namespace
metadata: {name: dev, labels: {team: b, kubernetes.io/metadata.name: dev}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: prod, labels: {app: web, pod-template-hash: 5d8f7c}}
spec:
  serviceAccountName: web-sa
  containers:
  - name: web
    ports: [{name: http, containerPort: 8080}, {name: metrics, containerPort: 9090, protocol: UDP}]
status: {podIP: 10.0.0.10}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: prod, labels: {app: client, tier: front}}
spec: {serviceAccountName: client-sa, containers: [{name: c}]}
status: {podIP: 10.0.0.11}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: dev, labels: {app: client}}
spec: {containers: [{name: c}]}
status: {podIP: 10.0.1.11}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: prod, labels: {app: db}}
spec: {containers: [{name: c}]}
status: {podIP: 10.0.0.12}
"""


def engine(*docs: str, **options) -> PolicyEngine:
    state = ClusterState()
    for text in (BASE, *docs):
        for obj in yaml.safe_load_all(text):
            if obj:
                add_object(state, obj)
    return PolicyEngine(state, **options)


def verdict(eng: PolicyEngine, src: str, dst: str, port: int = 8080, proto: str = "TCP") -> str:
    return eng.trace(src, dst, port, proto).verdict


def cnp(name: str, spec: str, namespace: str = "prod", kind: str = "CiliumNetworkPolicy") -> str:
    meta = f"{{name: {name}, namespace: {namespace}}}" if kind == "CiliumNetworkPolicy" else f"{{name: {name}}}"
    body = "\n".join("  " + line for line in spec.strip("\n").splitlines())
    return f"apiVersion: cilium.io/v2\nkind: {kind}\nmetadata: {meta}\nspec:\n{body}\n"


def ccnp(name: str, spec: str) -> str:
    return cnp(name, spec, kind="CiliumClusterwideNetworkPolicy")


WEB_FROM = """
endpointSelector: {{matchLabels: {{app: web}}}}
ingress:
- fromEndpoints:
  - {selector}
"""


# --- namespace scoping (§1.4, §1.9) ---------------------------------------------------------------------

def test_cnp_peer_selector_is_pinned_to_the_policy_namespace():
    eng = engine(cnp("p", WEB_FROM.format(selector="{matchLabels: {app: client}}")))
    assert verdict(eng, "prod/client", "prod/web") == "allowed"
    result = eng.trace("dev/client", "prod/web", 8080)
    assert result.verdict == "denied"
    ingress = result.layer("ingress")
    assert ingress.drop_reason == "POLICY_DENIED"
    assert ingress.isolated_by == ["CiliumNetworkPolicy/prod/p"]
    lacks = ingress.nearest[0].lacks
    assert [(lack.what, lack.values) for lack in lacks] == [("namespace", ("prod",))]


def test_cnp_peer_naming_a_namespace_reaches_into_it():
    eng = engine(cnp("p", WEB_FROM.format(
        selector="{matchLabels: {k8s:io.kubernetes.pod.namespace: dev, app: client}}")))
    assert verdict(eng, "dev/client", "prod/web") == "allowed"
    assert verdict(eng, "prod/client", "prod/web") == "denied"


def test_cnp_peer_with_namespace_labels_is_not_pinned():
    eng = engine(cnp("p", WEB_FROM.format(
        selector="{matchLabels: {io.cilium.k8s.namespace.labels.team: b}}")))
    assert verdict(eng, "dev/client", "prod/web") == "allowed"
    assert verdict(eng, "prod/client", "prod/web") == "denied"


def test_cnp_endpoint_selector_never_leaves_its_namespace():
    eng = engine(cnp("deny-all-dev", "endpointSelector: {}\ningress: [{}]", namespace="dev"))
    assert verdict(eng, "prod/client", "prod/web") == "allowed"
    assert verdict(eng, "prod/client", "dev/client") == "denied"


def test_cnp_endpoint_selector_naming_another_namespace_is_overridden_and_noted():
    eng = engine(cnp("p", """
endpointSelector: {matchLabels: {k8s:io.kubernetes.pod.namespace: dev}}
ingress: [{}]
"""))
    assert verdict(eng, "prod/client", "dev/client") == "allowed"
    result = eng.trace("dev/client", "prod/web", 8080)
    assert result.verdict == "denied"
    assert any("pins a CiliumNetworkPolicy to its own namespace" in n for n in result.layer("ingress").notes)


def test_ccnp_empty_peer_is_every_pod_of_every_namespace_but_never_world():
    eng = engine(ccnp("c", WEB_FROM.format(selector="{}")))
    assert verdict(eng, "dev/client", "prod/web") == "allowed"
    assert verdict(eng, "prod/client", "prod/web") == "allowed"
    assert verdict(eng, "world", "prod/web") == "denied"
    assert verdict(eng, "203.0.113.9", "prod/web") == "denied"


def test_ccnp_endpoint_selector_spans_namespaces():
    eng = engine(ccnp("c", "endpointSelector: {matchLabels: {app: client}}\ningress: [{}]"))
    assert verdict(eng, "prod/web", "prod/client") == "denied"
    assert verdict(eng, "prod/web", "dev/client") == "denied"
    assert verdict(eng, "prod/client", "prod/web") == "allowed"


def test_hubble_reports_ccnp_without_namespace():
    eng = engine(ccnp("c", "endpointSelector: {}\ningress: [{}]"))
    assert eng.trace("prod/client", "prod/web", 8080).layer("ingress").isolated_by == \
        ["CiliumClusterwideNetworkPolicy/c"]


# --- selectors and identity labels (§1.3) ------------------------------------------------------------------

@pytest.mark.parametrize("selector, allowed", [
    ("{matchExpressions: [{key: app, operator: In, values: [client, other]}]}", True),
    ("{matchExpressions: [{key: app, operator: NotIn, values: [client]}]}", False),
    ("{matchExpressions: [{key: tier, operator: Exists}]}", True),
    ("{matchExpressions: [{key: tier, operator: DoesNotExist}]}", False),
    ("{matchLabels: {k8s:app: client}}", True),
    ("{matchLabels: {any:app: client}}", True),
    ("{matchLabels: {reserved:app: client}}", False),
    ("{matchLabels: {io.cilium.k8s.policy.serviceaccount: client-sa}}", True),
    ("{matchLabels: {io.cilium.k8s.policy.serviceaccount: default}}", False),
])
def test_match_expressions_and_label_sources(selector, allowed):
    eng = engine(cnp("p", WEB_FROM.format(selector=selector)))
    assert verdict(eng, "prod/client", "prod/web") == ("allowed" if allowed else "denied")


def test_labels_outside_the_identity_filter_cannot_be_selected():
    eng = engine(cnp("p", """
endpointSelector: {matchLabels: {pod-template-hash: 5d8f7c}}
ingress: [{}]
"""))
    # pod-template-hash is not an identity label: the policy selects nothing, web stays open
    assert verdict(eng, "prod/client", "prod/web") == "allowed"
    assert "k8s:pod-template-hash=5d8f7c" not in eng.resolve("prod/web").labels.hubble_form()


# --- entities (§1.5) ------------------------------------------------------------------------------------

def test_from_entities_world():
    eng = engine(cnp("p", "endpointSelector: {matchLabels: {app: web}}\ningress:\n- fromEntities: [world]"))
    assert verdict(eng, "world", "prod/web") == "allowed"
    assert verdict(eng, "198.51.100.7", "prod/web") == "allowed"
    assert verdict(eng, "prod/client", "prod/web") == "denied"
    assert verdict(eng, "remote-node", "prod/web") == "denied"


def test_from_entities_cluster_covers_pods_and_nodes_not_world():
    eng = engine(cnp("p", "endpointSelector: {matchLabels: {app: web}}\ningress:\n- fromEntities: [cluster]"))
    assert verdict(eng, "dev/client", "prod/web") == "allowed"
    assert verdict(eng, "remote-node", "prod/web") == "allowed"
    assert verdict(eng, "kube-apiserver", "prod/web") == "allowed"
    assert verdict(eng, "world", "prod/web") == "denied"


def test_to_entities_all_and_kube_apiserver():
    eng = engine(cnp("p", """
endpointSelector: {matchLabels: {app: client}}
egress:
- toEntities: [kube-apiserver]
"""))
    assert verdict(eng, "prod/client", "kube-apiserver", 443) == "allowed"
    assert verdict(eng, "prod/client", "world", 443) == "denied"
    assert verdict(eng, "prod/client", "prod/web") == "denied"
    eng = engine(cnp("p", "endpointSelector: {matchLabels: {app: client}}\negress:\n- toEntities: [all]"))
    assert verdict(eng, "prod/client", "world", 443) == "allowed"


def test_host_reaches_local_pods_even_when_isolated():
    eng = engine(cnp("p", "endpointSelector: {matchLabels: {app: web}}\ningress: [{}]"))
    result = eng.trace("host", "prod/web", 8080)
    assert result.verdict == "allowed"
    assert result.layer("ingress").reason == "localhost"
    assert verdict(eng, "remote-node", "prod/web") == "denied"


# --- CIDR (§1.6) --------------------------------------------------------------------------------------

def test_cidr_set_with_except_and_never_pods():
    eng = engine(cnp("p", """
endpointSelector: {matchLabels: {app: client}}
egress:
- toCIDRSet:
  - cidr: 10.0.0.0/8
    except: [10.96.0.0/12]
"""))
    assert verdict(eng, "prod/client", "10.1.2.3", 443) == "allowed"
    assert verdict(eng, "prod/client", "10.96.0.1", 443) == "denied"
    # 10.0.0.10 is web's pod IP: it resolves to the pod, and CIDR rules never match pods
    result = eng.trace("prod/client", "10.0.0.10", 8080)
    assert result.dst.id == "prod/web" and result.verdict == "denied"
    assert "never match pods" in result.layer("egress").nearest[0].lacks[0].text


def test_to_cidr_ipv6_does_not_match_ipv4():
    eng = engine(cnp("p", "endpointSelector: {matchLabels: {app: client}}\negress:\n- toCIDR: ['::/0']"))
    assert verdict(eng, "prod/client", "2001:db8::1", 443) == "allowed"
    assert verdict(eng, "prod/client", "192.0.2.1", 443) == "denied"


# --- ports (§1.7) ---------------------------------------------------------------------------------------

PORTS = """
endpointSelector: {{matchLabels: {{app: web}}}}
ingress:
- fromEndpoints: [{{matchLabels: {{app: client}}}}]
  toPorts:
  - ports: [{ports}]
"""


def test_end_port_range_is_inclusive():
    eng = engine(cnp("p", PORTS.format(ports="{port: '8000', endPort: 8100, protocol: TCP}")))
    assert verdict(eng, "prod/client", "prod/web", 8000) == "allowed"
    assert verdict(eng, "prod/client", "prod/web", 8100) == "allowed"
    assert verdict(eng, "prod/client", "prod/web", 8101) == "denied"
    assert verdict(eng, "prod/client", "prod/web", 8050, "UDP") == "denied"


def test_named_port_resolves_on_the_destination():
    eng = engine(cnp("p", PORTS.format(ports="{port: http}")))
    assert verdict(eng, "prod/client", "prod/web", 8080) == "allowed"
    assert verdict(eng, "prod/client", "prod/web", 80) == "denied"
    eng = engine(cnp("p", PORTS.format(ports="{port: metrics, protocol: TCP}")))
    # metrics is 9090/UDP on the pod: a TCP rule on it admits nothing
    assert verdict(eng, "prod/client", "prod/web", 9090, "TCP") == "denied"
    assert verdict(eng, "prod/client", "prod/web", 9090, "UDP") == "denied"
    eng = engine(cnp("p", PORTS.format(ports="{port: metrics}")))
    assert verdict(eng, "prod/client", "prod/web", 9090, "UDP") == "allowed"


def test_protocol_any_is_the_default():
    eng = engine(cnp("p", PORTS.format(ports="{port: '53'}")))
    for proto in ("TCP", "UDP", "SCTP"):
        assert verdict(eng, "prod/client", "prod/web", 53, proto) == "allowed"
    assert verdict(eng, "prod/client", "prod/web", 8, "ICMPv4") == "denied"


def test_l4_only_rule_admits_every_peer_on_its_ports():
    eng = engine(cnp("p", """
endpointSelector: {matchLabels: {app: web}}
ingress:
- toPorts: [{ports: [{port: '8080', protocol: TCP}]}]
"""))
    assert verdict(eng, "dev/client", "prod/web", 8080) == "allowed"
    assert verdict(eng, "world", "prod/web", 8080) == "allowed"
    assert verdict(eng, "world", "prod/web", 8081) == "denied"


def test_icmps():
    eng = engine(cnp("p", """
endpointSelector: {matchLabels: {app: web}}
ingress:
- fromEndpoints: [{matchLabels: {app: client}}]
  icmps: [{fields: [{type: EchoRequest, family: IPv4}]}]
"""))
    assert verdict(eng, "prod/client", "prod/web", 8, "ICMPv4") == "allowed"
    assert verdict(eng, "prod/client", "prod/web", 13, "ICMPv4") == "denied"
    assert verdict(eng, "prod/client", "prod/web", 8080) == "denied"


# --- default deny (§1.2) --------------------------------------------------------------------------------

def test_empty_ingress_rule_isolates_and_allows_nothing():
    eng = engine(cnp("p", "endpointSelector: {matchLabels: {app: web}}\ningress: [{}]"))
    result = eng.trace("prod/client", "prod/web", 8080)
    assert result.verdict == "denied"
    assert result.deciding_layer.layer == "ingress"
    assert verdict(eng, "prod/web", "prod/client") == "allowed"  # egress untouched


def test_enable_default_deny_false_does_not_isolate():
    eng = engine(cnp("p", """
endpointSelector: {matchLabels: {app: web}}
enableDefaultDeny: {ingress: false}
ingress:
- fromEndpoints: [{matchLabels: {app: client}}]
"""))
    assert verdict(eng, "dev/client", "prod/web") == "allowed"
    assert eng.trace("dev/client", "prod/web", 8080).layer("ingress").reason == "not-isolated"


def test_any_policy_requesting_default_deny_wins():
    eng = engine(cnp("open", """
endpointSelector: {matchLabels: {app: web}}
enableDefaultDeny: {ingress: false}
ingress:
- fromEndpoints: [{matchLabels: {app: client}}]
"""), cnp("strict", "endpointSelector: {matchLabels: {app: web}}\ningress:\n- fromEntities: [world]"))
    assert verdict(eng, "prod/client", "prod/web") == "allowed"
    assert verdict(eng, "prod/db", "prod/web") == "denied"


def test_both_sides_must_allow():
    egress_only = cnp("egress", """
endpointSelector: {matchLabels: {app: client}}
egress:
- toEndpoints: [{matchLabels: {app: db}}]
""")
    eng = engine(egress_only)
    result = eng.trace("prod/client", "prod/web", 8080)
    assert result.verdict == "denied" and result.deciding_layer.layer == "egress"
    assert verdict(eng, "prod/client", "prod/db") == "allowed"
    eng = engine(egress_only, cnp("db-in", "endpointSelector: {matchLabels: {app: db}}\ningress: [{}]"))
    result = eng.trace("prod/client", "prod/db", 8080)
    assert result.layer("egress").verdict == "allowed"
    assert result.layer("ingress").verdict == "denied"


def test_enforcement_modes():
    assert verdict(engine(enforcement_mode="always"), "prod/client", "prod/web") == "denied"
    eng = engine(cnp("p", "endpointSelector: {}\ningress: [{}]"), enforcement_mode="never")
    assert verdict(eng, "prod/client", "prod/web") == "allowed"


# --- deny precedence (§1.8) -------------------------------------------------------------------------------

ROWS = [
    # (allow L7 HTTP, allow 80, allow 81, allow L3 client, deny 80, deny L3 client) -> (:81, :80, ping)
    ((1, 1, 1, 1, 0, 0), ("allowed", "allowed", "allowed")),
    ((1, 1, 1, 1, 1, 0), ("allowed", "denied", "allowed")),
    ((1, 1, 1, 1, 0, 1), ("denied", "denied", "denied")),
    ((1, 1, 1, 1, 1, 1), ("denied", "denied", "denied")),
    ((0, 0, 0, 0, 1, 0), ("denied", "denied", "denied")),
]
FILES = ("allow-l7-http.yaml", "allow-80.yaml", "allow-81.yaml", "allow-l3-client.yaml", "deny-80.yaml",
         "deny-l3-client.yaml")


@pytest.mark.parametrize("present, expected", ROWS)
def test_cilium_deny_precedence_truth_table(present, expected):
    files = [TRUTH_TABLE / "base.yaml"] + [TRUTH_TABLE / f for f, on in zip(FILES, present, strict=True) if on]
    eng = PolicyEngine(load_snapshot(files))
    got = (verdict(eng, "demo/client", "demo/server", 81), verdict(eng, "demo/client", "demo/server", 80),
           verdict(eng, "demo/client", "demo/server", 8, "ICMPv4"))
    assert got == expected


def test_deny_reports_policy_deny_and_the_rule():
    files = [TRUTH_TABLE / f for f in ("base.yaml", "allow-l3-client.yaml", "deny-80.yaml")]
    result = PolicyEngine(load_snapshot(files)).trace("demo/client", "demo/server", 80)
    ingress = result.layer("ingress")
    assert ingress.reason == "deny-rule" and ingress.drop_reason == "POLICY_DENY"
    assert [(d.ref, d.path) for d in ingress.denied_by] == [
        ("CiliumNetworkPolicy/demo/deny-80", "spec.ingressDeny[0]")]


def test_a_cnp_deny_beats_a_kubernetes_networkpolicy_allow():
    np = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all, namespace: prod}
spec:
  podSelector: {}
  ingress: [{}]
"""
    eng = engine(np, cnp("deny", "endpointSelector: {matchLabels: {app: web}}\n"
                                 "ingressDeny:\n- fromEndpoints: [{matchLabels: {app: client}}]"))
    assert verdict(eng, "prod/client", "prod/web") == "denied"
    assert verdict(eng, "prod/db", "prod/web") == "allowed"


# --- L7 (§1.7) -----------------------------------------------------------------------------------------

def test_l7_rules_are_reported_not_silently_allowed():
    eng = engine(cnp("p", """
endpointSelector: {matchLabels: {app: web}}
ingress:
- fromEndpoints: [{matchLabels: {app: client}}]
  toPorts:
  - ports: [{port: '8080', protocol: TCP}]
    rules:
      http: [{method: GET, path: /public/.*}]
"""))
    result = eng.trace("prod/client", "prod/web", 8080)
    assert result.verdict == "allowed"
    assert result.l7 == ["HTTP GET /public/.*"]
    assert "L7" in result.explanation()
    assert result.to_dict()["l7"] == ["HTTP GET /public/.*"]


def test_l4_allow_next_to_l7_rule_is_a_plain_allow():
    files = [TRUTH_TABLE / f for f in ("base.yaml", "allow-l7-http.yaml", "allow-80.yaml")]
    result = PolicyEngine(load_snapshot(files)).trace("demo/client", "demo/server", 80)
    assert result.verdict == "allowed" and result.l7 == []


# --- services and FQDNs (§1.6) -------------------------------------------------------------------------------

def test_to_services_uses_the_service_selector():
    svc = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: prod}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
"""
    eng = engine(svc, cnp("p", """
endpointSelector: {matchLabels: {app: client}}
egress:
- toServices: [{k8sService: {serviceName: web, namespace: prod}}]
"""))
    assert verdict(eng, "prod/client", "prod/web") == "allowed"
    assert verdict(eng, "prod/client", "prod/db") == "denied"


def test_to_fqdns_matches_dns_names():
    eng = engine(cnp("p", """
endpointSelector: {matchLabels: {app: client}}
egress:
- toFQDNs: [{matchPattern: '*.example.com'}]
"""))
    assert verdict(eng, "prod/client", "api.example.com", 443) == "allowed"
    assert verdict(eng, "prod/client", "a.b.example.com", 443) == "denied"
    assert verdict(eng, "prod/client", "example.org", 443) == "denied"
    assert verdict(eng, "prod/client", "192.0.2.1", 443) == "denied"


def test_unsupported_peers_are_noted_not_matched():
    eng = engine(cnp("p", """
endpointSelector: {matchLabels: {app: client}}
egress:
- toGroups: [{aws: {securityGroupsIds: [sg-1]}}]
"""))
    result = eng.trace("prod/client", "remote-node", 10250)
    assert result.verdict == "denied"
    assert any("toGroups is not evaluated" in n for n in result.layer("egress").notes)
