"""Istio details as istiod and the sidecar have them: uncaptured ports, TCP refusals, invalid policies.

Upstream: istio/istio manifests/charts/istio-control/istio-discovery/files/injection-template.yaml (istio-iptables
`-d 15090,15021,<status port>`, include/exclude inbound-port annotations, probe rewriting), Envoy's RBAC network
filter (TCP: the connection is closed) and pkg/config/validation/validation.go (ValidateAuthorizationPolicy).
"""

from __future__ import annotations

import yaml

from hubbletui.cluster.model import ClusterState
from hubbletui.cluster.snapshot import add_object
from hubbletui.policy.engine import PolicyEngine

BASE = """
apiVersion: v1
kind: Node
metadata: {name: n1}
status: {addresses: [{type: InternalIP, address: 172.18.0.2}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: app, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: app, labels: {app: api}}
spec:
  nodeName: n1
  containers:
  - name: api
    ports: [{name: http, containerPort: 8080}, {name: grpc, containerPort: 9000}]
    readinessProbe: {httpGet: {port: http, path: /ready}}
  - {name: istio-proxy}
status: {podIP: 10.0.1.10}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: app, labels: {app: client}}
spec: {nodeName: n1, containers: [{name: c}, {name: istio-proxy}]}
status: {podIP: 10.0.1.11}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
"""


def engine(*docs: str) -> PolicyEngine:
    state = ClusterState()
    for text in (BASE, *docs):
        for obj in yaml.safe_load_all(text):
            if obj:
                add_object(state, obj)
    return PolicyEngine(state)


ALLOW_NOTHING = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: app}
spec: {}
"""


def test_ports_the_sidecar_never_captures_skip_mtls_and_authorization():
    """injection-template.yaml: istio-iptables -d 15090,15021,15020: those ports reach the app directly."""
    eng = engine(ALLOW_NOTHING)
    for port in (15020, 15021, 15090):
        result = eng.trace("203.0.113.9", "app/api", port)
        assert result.verdict == "allowed", port
        assert result.layer("istio").reason == "istio-not-captured"
    assert eng.trace("203.0.113.9", "app/api", 8080).layer("istio").reason == "mtls-strict"


def test_excluded_inbound_ports_are_not_captured():
    """injection-template.yaml: traffic.sidecar.istio.io/excludeInboundPorts joins the -d list;
    includeInboundPorts (-b) limits capture to the ports it lists."""
    annotated = BASE.replace("metadata: {name: api, namespace: app, labels: {app: api}}",
                             "metadata: {name: api, namespace: app, labels: {app: api}, annotations: "
                             "{traffic.sidecar.istio.io/excludeInboundPorts: '9000'}}")
    state = ClusterState()
    for obj in yaml.safe_load_all(annotated + "---\n" + ALLOW_NOTHING):
        if obj:
            add_object(state, obj)
    eng = PolicyEngine(state)
    assert eng.trace("app/client", "app/api", 9000).verdict == "allowed"
    assert eng.trace("app/client", "app/api", 8080).verdict == "denied"


def test_rewritten_probes_from_the_node_are_not_captured():
    """Probe rewriting (sidecar.istio.io/rewriteAppHTTPProbers, default true) sends the kubelet's probe to the
    agent's status port: the node's probe of the readiness port does not meet STRICT mTLS."""
    eng = engine(ALLOW_NOTHING)
    probe = eng.trace("node/n1", "app/api", 8080)
    assert probe.verdict == "allowed" and probe.layer("istio").reason == "istio-not-captured"
    assert eng.trace("203.0.113.9", "app/api", 8080).verdict == "denied"


def test_a_tcp_refusal_is_a_closed_connection_not_a_403():
    """Envoy's RBAC network filter closes a TCP connection; only the HTTP filter answers 403 'RBAC: access
    denied'. The gRPC port has no HTTP Service declaration here, but an ALLOW-nothing policy denies it."""
    tcp_service = """
apiVersion: v1
kind: Service
metadata: {name: api, namespace: app}
spec: {selector: {app: api}, ports: [{name: tcp-db, port: 9000, targetPort: 9000}]}
"""
    layer = engine(ALLOW_NOTHING, tcp_service).trace("app/client", "app/api", 9000).layer("istio")
    assert layer.verdict == "denied"
    assert layer.drop_reason == "connection closed (TCP RBAC)"
    assert "closes the connection" in layer.explanation


def test_an_invalid_authorization_policy_is_not_applied_and_says_so():
    """validation.go: a DENY policy without rules is refused; istiod does not apply it."""
    deny_without_rules = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: broken, namespace: app}
spec: {action: DENY}
"""
    result = engine(deny_without_rules).trace("app/client", "app/api", 8080)
    assert result.verdict == "allowed"
    assert any("rejected by Istio" in n for n in result.layer("istio").notes)


# 6. conditional verdicts --------------------------------------------------------------------------------
CUSTOM = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: app}
spec: {action: CUSTOM, provider: {name: opa}, rules: [{to: [{operation: {paths: [/admin]}}]}]}
"""


def test_istio_custom_makes_the_answer_conditional():
    """Istio evaluates CUSTOM first and the external authorizer decides (Documentation: authorization-policy
    'CUSTOM'); the cluster state cannot say what it answers."""
    result = engine(CUSTOM).trace("app/client", "app/api", 8080)
    record = result.to_dict()
    assert record["verdict"] == "conditional"
    assert [c["kind"] for c in record["conditions"]] == ["istio-custom"]
    assert result.verdict == "allowed"  # at L3/L4 nothing stops it


def test_fqdn_and_l7_rules_make_the_answer_conditional():
    """toFQDNs admits only addresses learnt through Cilium's DNS proxy (Documentation/security/policy/
    language.rst 'DNS based'); L7 rules filter each request in the proxy (language.rst 'Layer 7')."""
    from hubbletui.policy.result import summary_dict

    fqdn = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: out, namespace: app}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
  - toFQDNs: [{matchName: api.example.com}]
    toPorts: [{ports: [{port: "443", protocol: TCP}]}]
  - toEndpoints: [{matchLabels: {app: api}}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}], rules: {http: [{method: GET}]}}]
"""
    eng = engine(fqdn)
    answer = summary_dict(eng.trace("app/client", "api.example.com", 443))
    assert answer["verdict"] == "conditional" and answer["conditions"][0]["kind"] == "fqdn"
    l7 = eng.trace("app/client", "app/api", 8080)
    assert l7.answer == "conditional" and [c.kind for c in l7.conditions] == ["l7"]
    assert summary_dict(eng.trace("app/client", "app/api", 9000))["verdict"] == "denied"
