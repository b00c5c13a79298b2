"""Policies Cilium (or Istio) refuses are not enforced, are said to be refused, and are never suggested.

Each case follows an upstream check, cited in its docstring:
- cilium/cilium pkg/policy/api/rule_validation.go (Rule.Validate, IngressCommonRule/EgressCommonRule.Validate,
  PortRule.Validate, PortProtocol.Validate, CIDRRule.Validate) and rule_validation_helpers.go (l3Members);
- cilium/cilium pkg/policy/api/rule.go (NodeSelector "Can only be used in CiliumClusterwideNetworkPolicies");
- the CRD schema (../shared/schemas/cilium.io_ciliumnetworkpolicy_v2.json: the entity enum, deny rules' toPorts);
- istio/istio pkg/config/validation/validation.go (ValidateAuthorizationPolicy).
"""

from __future__ import annotations

import json

import pytest
import yaml

from hubbletui.cluster.model import ClusterState
from paths import SHARED
from hubbletui.cluster.snapshot import add_object
from hubbletui.policy.cilium_validate import validate_policy
from hubbletui.policy.engine import PolicyEngine
from hubbletui.policy.istio_validate import validate_authorization_policy

SCHEMAS = SHARED / "schemas"

BASE = """
apiVersion: v1
kind: Namespace
metadata: {name: prod}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: prod, labels: {app: web}}
spec: {containers: [{name: web, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.0.0.10}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: prod, labels: {app: client}}
spec: {containers: [{name: c}]}
status: {podIP: 10.0.0.11}
"""


def cnp(spec: str, name: str = "p", kind: str = "CiliumNetworkPolicy") -> dict:
    meta = {"name": name} if kind == "CiliumClusterwideNetworkPolicy" else {"name": name, "namespace": "prod"}
    return {"apiVersion": "cilium.io/v2", "kind": kind, "metadata": meta, "spec": yaml.safe_load(spec)}


def engine(*objs: dict) -> PolicyEngine:
    state = ClusterState()
    for obj in [*yaml.safe_load_all(BASE), *objs]:
        if obj:
            add_object(state, obj)
    return PolicyEngine(state)


# a rule that would isolate web for ingress and admit client only, if Cilium took it
def mixed_ingress() -> dict:
    return cnp("""
endpointSelector: {matchLabels: {app: web}}
ingress:
- fromEndpoints: [{matchLabels: {app: client}}]
  fromCIDR: [192.0.2.0/24]
""")


def test_mixing_peer_kinds_in_one_rule_is_refused():
    """rule_validation.go IngressCommonRule.Validate: 'combining FromEndpoints and FromCIDR is not supported
    yet' (l3Members: FromEndpoints, FromCIDR, FromCIDRSet, FromEntities, FromNodes, FromGroups)."""
    problem = validate_policy(mixed_ingress())
    assert problem and "combining fromEndpoints and fromCIDR" in problem


@pytest.mark.parametrize("entry", [
    {"toEndpoints": [{}], "toEntities": ["world"]},
    {"toCIDRSet": [{"cidr": "10.0.0.0/8"}], "toFQDNs": [{"matchName": "example.com"}]},
    {"toServices": [{"k8sService": {"serviceName": "x"}}], "toEndpoints": [{}]},
])
def test_mixing_egress_peer_kinds_is_refused(entry):
    """rule_validation_helpers.go EgressRule.l3Members: ToCIDR, ToCIDRSet, ToEndpoints, ToEntities, ToServices,
    ToGroups, ToNodes and (allow rules) ToFQDNs are mutually exclusive in one rule."""
    obj = cnp(json.dumps({"endpointSelector": {}, "egress": [entry]}))
    assert "combining" in (validate_policy(obj) or "")


def test_a_refused_policy_selects_nothing_and_says_so():
    """rule_validation.go: Validate fails, so the agent imports nothing of the policy: web stays open."""
    eng = engine(mixed_ingress())
    result = eng.trace("192.0.2.9", "prod/web", 8080)
    assert result.verdict == "allowed"
    assert result.layer("ingress").reason == "not-isolated"
    assert any("rejected by Cilium" in n and "CiliumNetworkPolicy/prod/p" in n for n in result.to_dict()["notes"])
    assert [p.key.ref for p in eng.rejected_policies()] == ["CiliumNetworkPolicy/prod/p"]


@pytest.mark.parametrize("protocol", [None, "UDP", "ANY"])
def test_l7_rules_on_a_port_that_is_not_tcp_are_refused(protocol):
    """rule_validation.go PortRule.Validate: 'L7 rules can only apply to TCP (not %s) except for DNS rules';
    an omitted protocol is not TCP."""
    port = {"port": "80"} | ({"protocol": protocol} if protocol else {})
    obj = cnp(json.dumps({"endpointSelector": {}, "ingress": [
        {"toPorts": [{"ports": [port], "rules": {"http": [{"method": "GET"}]}}]}]}))
    assert "L7 rules can only apply to TCP" in (validate_policy(obj) or "")


def test_dns_rules_may_use_udp_on_egress():
    """rule_validation.go PortRule.Validate: DNS rules are the exception to TCP-only L7."""
    obj = cnp("""
endpointSelector: {}
egress:
- toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system}}]
  toPorts: [{ports: [{port: "53", protocol: ANY}], rules: {dns: [{matchPattern: "*"}]}}]
""")
    assert validate_policy(obj) is None


def test_dns_rules_on_ingress_are_refused():
    """rule_validation.go IngressRule.Validate: 'L7 protocol DNS is not supported on ingress yet'."""
    obj = cnp("""
endpointSelector: {}
ingress:
- toPorts: [{ports: [{port: "53", protocol: UDP}], rules: {dns: [{matchName: a.b}]}}]
""")
    assert "DNS" in (validate_policy(obj) or "")


def test_removed_from_requires_is_refused():
    """fromRequires was removed in Cilium 1.19 (absent from the v1.19 IngressCommonRule.Validate)."""
    obj = cnp("""
endpointSelector: {}
ingress:
- fromRequires: [{matchLabels: {env: prod}}]
  fromEndpoints: [{}]
""")
    assert "fromRequires" in (validate_policy(obj) or "")


@pytest.mark.parametrize("spec, why", [
    ("{ingress: [{fromEndpoints: [{}]}]}", "one of EndpointSelector or NodeSelector"),
    ("{endpointSelector: {}, nodeSelector: {}, ingress: [{}]}", "cannot have both"),
    ("{endpointSelector: {}}", "at least one of Ingress"),
    ("{endpointSelector: {}, ingress: []}", "at least one of Ingress"),
    ("{nodeSelector: {}, ingress: [{fromEntities: [world]}]}", "only be used in a CiliumClusterwideNetworkPolicy"),
])
def test_rule_level_refusals(spec, why):
    """rule_validation.go Rule.Validate (selectors, at least one section); rule.go NodeSelector doc (CCNP only)."""
    assert why in (validate_policy(cnp(spec)) or "")


@pytest.mark.parametrize("entry, why", [
    ({"fromCIDR": ["10.0.0.300/8"]}, "unable to parse CIDR"),
    ({"fromCIDRSet": [{"cidr": "10.0.0.1"}]}, "unable to parse CIDRRule"),
    ({"fromCIDRSet": [{"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}]}, "does not contain"),
    ({"fromCIDRSet": [{"cidr": "10.0.0.0/8", "cidrGroupRef": "g"}]}, "more than one of"),
    ({"fromCIDRSet": [{"except": ["10.0.0.0/8"]}]}, "one of cidr, cidrGroupRef, or cidrGroupSelector"),
    ({"fromEntities": ["cluster-mesh"]}, "unsupported entity"),
    ({"fromEntities": ["everything"]}, "unsupported entity"),
    ({"toPorts": [{"ports": [{"port": "70000"}]}]}, "unable to parse port"),
    ({"toPorts": [{"ports": [{"protocol": "TCP"}]}]}, "port must be specified"),
    ({"toPorts": [{"ports": [{"port": "80", "protocol": "ICMP"}]}]}, "invalid protocol"),
    ({"toPorts": [{"ports": [{"port": "80"}]}], "icmps": [{"fields": [{"type": 8}]}]}, "ICMPs block"),
    ({"icmps": [{"fields": [{"type": "Ping"}]}]}, "unknown ICMP type"),
    ({"icmps": [{"fields": [{"family": "IPv5", "type": 8}]}]}, "wrong family"),
    ({"fromNodes": [{"matchLabels": {"role": "worker"}}]}, "enable-node-selector-labels"),
    ({"toPorts": [{"ports": [{"port": "0", "protocol": "TCP"}], "rules": {"http": [{}]}}]}, "port is 0"),
    ({"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}], "listener": {"name": "x"}}]}, "Listener"),
])
def test_peer_and_port_refusals(entry, why):
    """rule_validation.go CIDR.Validate, CIDRRule.Validate, PortProtocol.Validate, PortRule.Validate,
    ICMPRule.Validate, ErrFromToNodesRequiresNodeSelectorOption; the CRD entity enum (no cluster-mesh in v1.19)."""
    obj = cnp(json.dumps({"endpointSelector": {}, "ingress": [entry]}))
    assert why in (validate_policy(obj) or ""), validate_policy(obj)


@pytest.mark.parametrize("entry", [
    {"fromCIDR": ["10.0.0.1"]},  # CIDR.Validate accepts a bare address
    {"fromCIDRSet": [{"cidrGroupRef": "partners"}]},
    {"toPorts": [{"ports": [{"port": "http"}, {"port": "8080", "endPort": 8090}]}]},
    {"fromEntities": ["kube-apiserver", "remote-node", "world"]},
    {"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}], "rules": {"http": [{"method": "GET"}]}}]},
    {"icmps": [{"fields": [{"type": "EchoRequest"}, {"family": "IPv6", "type": 128}]}]},
])
def test_valid_rules_pass(entry):
    """The same checks accept these shapes (rule_validation.go; port names are IANA service names)."""
    assert validate_policy(cnp(json.dumps({"endpointSelector": {}, "ingress": [entry]}))) is None


def test_deny_rules_take_no_l7():
    """The CRD's PortDenyRule has only `ports` (schemas/cilium.io_ciliumnetworkpolicy_v2.json): an L7 rule in a
    deny section is refused, and so is toFQDNs in egressDeny."""
    deny_l7 = cnp("""
endpointSelector: {}
ingressDeny:
- fromEntities: [world]
  toPorts: [{ports: [{port: "80", protocol: TCP}], rules: {http: [{method: GET}]}}]
""")
    assert "not allowed in a deny rule" in (validate_policy(deny_l7) or "")
    deny_fqdn = cnp("""
endpointSelector: {}
egressDeny: [{toFQDNs: [{matchName: example.com}]}]
""")
    assert "toFQDNs" in (validate_policy(deny_fqdn) or "")


def test_one_bad_rule_refuses_the_whole_policy():
    """Every spec of `specs` is validated; one failure and the object is not imported (cnp_types.go Parse)."""
    obj = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "p", "namespace": "prod"},
           "specs": [{"endpointSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"fromEndpoints": [{}]}]},
                     {"endpointSelector": {}, "egress": [{"toEntities": ["nowhere"]}]}]}
    assert (validate_policy(obj) or "").startswith("specs[1]")
    eng = engine(obj)
    assert eng.trace("prod/client", "prod/web", 8080).verdict == "allowed"


def test_refused_policies_are_reported_when_loaded(tmp_path, capsys):
    """The load report (stderr of every command that reads a cluster) names each refused policy."""
    from hubbletui.cli import main

    (tmp_path / "c.yaml").write_text(BASE + "---\n" + yaml.safe_dump(mixed_ingress()))
    code = main(["trace", "--cluster", str(tmp_path), "--src", "192.0.2.9", "--dst", "prod/web", "--dport", "8080",
                 "-o", "json"])
    err = capsys.readouterr().err
    assert code == 0
    assert "CiliumNetworkPolicy/prod/p: rejected by Cilium: spec: ingress[0]: combining" in err


# Istio -------------------------------------------------------------------------------------------------
def ap(spec: str) -> dict:
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": "a", "namespace": "prod"}, "spec": yaml.safe_load(spec)}


@pytest.mark.parametrize("spec, why", [
    ("{action: DENY}", "DENY action without `rules`"),
    ("{action: CUSTOM, rules: [{}]}", "`provider.name` must not be empty"),
    ("{action: CUSTOM}", "CUSTOM action without `rules`"),
    ("{action: CUSTOM, provider: {name: ext}, rules: [{from: [{source: {namespaces: [a]}}]}]}",
     "not supported with CUSTOM"),
    ("{provider: {name: ext}, rules: [{}]}", "`provider` must not be with non CUSTOM action"),
    ("{rules: [{from: []}]}", "`from` must not be empty"),
    ("{rules: [{from: [{source: {}}]}]}", "`from.source` must not be empty"),
    ("{rules: [{to: [{operation: {ports: ['99999']}}]}]}", "invalid port"),
    ("{rules: [{when: [{key: 'request.headers[x]'}]}]}", "at least one of `values` or `notValues`"),
    ("{rules: [{from: [{source: {ipBlocks: [10.0.0.0/33]}}]}]}", "invalid IP"),
    ("{rules: [{from: [{source: {namespaces: [a], serviceAccounts: [a/b]}}]}]}", "cannot set serviceAccounts"),
])
def test_istio_refuses_these_authorization_policies(spec, why):
    """istio/istio pkg/config/validation/validation.go ValidateAuthorizationPolicy."""
    assert why in (validate_authorization_policy(ap(spec)) or "")


def test_istio_accepts_the_usual_shapes():
    """ALLOW with no rules (allow nothing) and `rules: [{}]` (allow all) are valid (validation.go)."""
    for spec in ("{}", "{rules: [{}]}", "{action: DENY, rules: [{}]}",
                 "{rules: [{from: [{source: {principals: [cluster.local/ns/a/sa/b]}}], to: [{operation: "
                 "{ports: ['8080']}}]}]}"):
        assert validate_authorization_policy(ap(spec)) is None, spec


# suggestions ------------------------------------------------------------------------------------------
def test_rule_patch_adds_a_peer_of_another_kind_as_its_own_rule():
    """rule_validation.go: a CIDR peer cannot join a fromEndpoints rule, so the patch adds a sibling rule with
    the same ports; the patched policy passes the validator."""
    from hubbletui.suggest.candidates_rule_patch import rule_patch_options

    eng = engine(cnp("""
endpointSelector: {matchLabels: {app: web}}
ingress:
- fromEndpoints: [{matchLabels: {app: client}}]
  toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
"""))
    peer, web = eng.resolve("192.0.2.9"), eng.resolve("prod/web")
    options, _ = rule_patch_options(eng, "ingress", web, peer, web, 8080, "TCP")
    assert options
    change = options[0][0]
    after = change.after[0]
    assert after["spec"]["ingress"][1] == {"fromCIDR": ["192.0.2.9/32"],
                                           "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}]}
    assert validate_policy(after) is None
    assert eng.what_if(upserts=[after]).trace(peer, web, 8080).verdict == "allowed"


def test_every_suggested_document_passes_the_validators_and_the_crd_schema():
    """Every YAML document `suggest` produces for the scenarios passes cilium_validate / istio_validate and the
    CRD schema (../shared/schemas)."""
    jsonschema = pytest.importorskip("jsonschema")
    if not SCHEMAS.is_dir():
        pytest.skip("../shared/schemas is not present")
    from hubbletui.diagnose.groups import DropGroup
    from hubbletui.flows.conn import Conn, GroupKey, Port
    from hubbletui.suggest.fixes import suggest_for_case

    eng = engine(cnp("""
endpointSelector: {matchLabels: {app: web}}
ingress:
- fromEndpoints: [{matchLabels: {app: client}}]
  toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
"""))
    schemas = {kind: json.loads((SCHEMAS / f"cilium.io_{kind.lower()}_v2.json").read_text())
               for kind in ("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy")}
    key = GroupKey(Conn("192.0.2.9", "prod/web", Port(8080, "TCP")), "DROPPED", "POLICY_DENIED")
    case = DropGroup(key, 1, 0, 0, None, layer="ingress")  # no sample: the refs are resolved instead
    fixes = suggest_for_case(eng, case)
    documents = [obj for s in fixes.suggestions for c in s.changes for obj in c.after]
    assert documents
    for obj in documents:
        assert validate_policy(obj) is None if obj["kind"].startswith("Cilium") else True
        if obj["kind"] in schemas:
            errors = list(jsonschema.Draft202012Validator(schemas[obj["kind"]]).iter_errors(obj))
            assert not errors, [e.message for e in errors]
