"""Istio AuthorizationPolicy evaluation, PeerAuthentication precedence and sidecar membership."""

from __future__ import annotations

import json

import pytest

from hubbletui.policy.istio import (
    IstioDecision,
    evaluate_authz,
    in_mesh,
    mesh_membership,
    mtls_decision,
    mtls_mode,
    parse_principal,
    policy_applies,
    principal_of,
    string_match,
)

ROOT = "istio-system"
CLIENT = "cluster.local/ns/client-ns/sa/client"
OTHER = "cluster.local/ns/other/sa/web"


def ap(name: str, ns: str = "app", action: str | None = None, rules: list | None = None,
       selector: dict | None = None, api: str = "security.istio.io/v1", annotations: dict | None = None,
       **spec_extra) -> dict:
    spec: dict = {}
    if action:
        spec["action"] = action
    if rules is not None:
        spec["rules"] = rules
    if selector is not None:
        spec["selector"] = {"matchLabels": selector}
    spec.update(spec_extra)
    meta = {"name": name, "namespace": ns}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": api, "kind": "AuthorizationPolicy", "metadata": meta, "spec": spec}


def src(**fields) -> dict:
    return {"from": [{"source": fields}]}


def op(**fields) -> dict:
    return {"to": [{"operation": fields}]}


def ev(policies, principal: str | None = CLIENT, port: int = 8080, is_http: bool = False, ns: str = "app",
       labels: dict | None = None, source_namespace: str | None = "client-ns", **kw) -> IstioDecision:
    return evaluate_authz(policies, ROOT, ns, labels if labels is not None else {"app": "db"}, principal,
                          source_namespace, port, is_http, **kw)


ALLOW_CLIENT = ap("allow-client", rules=[src(principals=[CLIENT])])


# ------------------------------------------------------------------------------------------ identities

def test_principal_of_defaults_and_trust_domain():
    assert principal_of("database", "fdb-exporter") == "cluster.local/ns/database/sa/fdb-exporter"
    assert principal_of("database") == "cluster.local/ns/database/sa/default"
    assert principal_of("database", None) == "cluster.local/ns/database/sa/default"
    assert principal_of("a", "b", trust_domain="example.org") == "example.org/ns/a/sa/b"


def test_parse_principal():
    assert parse_principal("spiffe://cluster.local/ns/a/sa/b") == ("cluster.local", "a", "b")
    assert parse_principal("cluster.local/ns/a/sa/b") == ("cluster.local", "a", "b")
    assert parse_principal("not-a-principal") is None
    assert parse_principal("cluster.local/ns//sa/b") is None


@pytest.mark.parametrize("pattern,value,expected", [
    ("abc", "abc", True), ("abc", "abcd", False), ("ab*", "abcd", True), ("*cd", "abcd", True),
    ("*cd", "abce", False), ("*", "x", True), ("*", "", False), ("*", None, False),
])
def test_string_match(pattern, value, expected):
    assert string_match(pattern, value) is expected


# ------------------------------------------------------------------------------------------ evaluation order

def test_no_policy_allows():
    d = ev([])
    assert d.allowed and d.action == "NONE" and d.matched is None and d.applicable_allow == ()


def test_allow_match_names_policy_and_rule():
    d = ev([ALLOW_CLIENT])
    assert d.allowed and d.action == "ALLOW"
    assert d.matched == ("app/allow-client", 0)
    assert d.applicable_allow == ("app/allow-client",)
    assert d.reason == f"ALLOW policy app/allow-client rule 0 admits {CLIENT} on 8080"


def test_deny_wins_over_allow():
    deny = ap("deny-client", action="DENY", rules=[src(principals=[CLIENT])])
    d = ev([ALLOW_CLIENT, deny])
    assert not d.allowed and d.action == "DENY" and d.matched == ("app/deny-client", 0)
    assert d.reason == f"DENY policy app/deny-client rule 0 refuses {CLIENT} on 8080"


def test_deny_not_matching_then_allow_decides():
    deny = ap("deny-other", action="DENY", rules=[src(principals=[OTHER])])
    assert ev([ALLOW_CLIENT, deny]).action == "ALLOW"
    assert not ev([ALLOW_CLIENT, deny], principal=OTHER).allowed


def test_only_unmatched_deny_policies_allow_by_default():
    deny = ap("deny-other", action="DENY", rules=[src(principals=[OTHER])])
    d = ev([deny])
    assert d.allowed and d.action == "NONE"


def test_allow_applies_but_none_matches_denies():
    d = ev([ALLOW_CLIENT], principal=OTHER)
    assert not d.allowed and d.action == "ALLOW" and d.matched is None
    assert d.applicable_allow == ("app/allow-client",)


def test_action_defaults_to_allow():
    d = ev([ap("implicit", rules=[src(principals=[OTHER])])])
    assert not d.allowed and d.applicable_allow == ("app/implicit",)


def test_custom_reported_and_not_denying():
    custom = ap("ext", action="CUSTOM", provider={"name": "my-authz"}, rules=[op(ports=["8080"])])
    d = ev([custom])
    assert d.allowed and d.action == "CUSTOM"
    assert d.reason.startswith("custom: decided by external authorizer my-authz")
    assert d.matched == ("app/ext", 0)
    assert any("external authorizer my-authz" in n and "not denying" in n for n in d.notes)


def test_custom_then_deny_still_denies():
    custom = ap("ext", action="CUSTOM", provider={"name": "my-authz"}, rules=[{}])
    deny = ap("deny-all", action="DENY", rules=[{}])
    d = ev([custom, deny])
    assert not d.allowed and d.action == "DENY"
    assert any(n.startswith("custom: decided by external authorizer my-authz") for n in d.notes)


def test_custom_then_allow_decides():
    custom = ap("ext", action="CUSTOM", provider={"name": "my-authz"}, rules=[{}])
    assert not ev([custom, ALLOW_CLIENT], principal=OTHER).allowed
    d = ev([custom, ALLOW_CLIENT])
    assert d.allowed and d.action == "CUSTOM" and d.matched == ("app/allow-client", 0)
    assert "my-authz" in d.reason


def test_custom_not_matching_is_silent():
    custom = ap("ext", action="CUSTOM", provider={"name": "my-authz"}, rules=[op(ports=["9999"])])
    d = ev([custom])
    assert d.action == "NONE" and d.notes == ()


def test_custom_without_rules_does_nothing():
    d = ev([ap("ext", action="CUSTOM", provider={"name": "my-authz"})])
    assert d.action == "NONE" and d.notes == ()


def test_audit_is_ignored():
    d = ev([ap("audit", action="AUDIT", rules=[{}]), ap("audit2", action="AUDIT")])
    assert d.allowed and d.action == "NONE" and d.applicable_allow == ()


# ------------------------------------------------------------------------------------------ scope

def test_root_namespace_policy_applies_everywhere():
    nothing = ap("deny-everything", ns=ROOT)
    assert not ev([nothing]).allowed
    assert not ev([nothing], ns="elsewhere").allowed


def test_root_namespace_selector_matches_in_all_namespaces():
    by_label = ap("v1-only", ns=ROOT, selector={"version": "v1"})
    assert not ev([by_label], labels={"app": "db", "version": "v1"}, ns="team-a").allowed
    assert ev([by_label], labels={"app": "db", "version": "v2"}, ns="team-a").allowed


def test_other_namespace_policy_does_not_apply():
    assert ev([ap("nothing", ns="other")]).action == "NONE"


def test_selector_matches_labels():
    p = ap("db-only", selector={"app": "db"})
    assert not ev([p], labels={"app": "db", "tier": "x"}).allowed
    assert ev([p], labels={"app": "web"}).allowed
    assert ev([p], labels={}).allowed


def test_no_selector_or_empty_selector_is_namespace_wide():
    assert not ev([ap("ns-wide")], labels={"app": "anything"}).allowed
    empty = ap("empty-sel", selector={})
    assert not ev([empty], labels={"app": "anything"}).allowed


def test_policy_applies_helper():
    p = ap("db-only", selector={"app": "db"})
    assert policy_applies(p, ROOT, "app", {"app": "db"})
    assert not policy_applies(p, ROOT, "app", {"app": "web"})
    assert not policy_applies(p, ROOT, "other", {"app": "db"})


@pytest.mark.parametrize("target", [
    {"targetRefs": [{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "gw"}]},
    {"targetRef": {"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "gw"}},
    {"targetRefs": [{"kind": "Service", "group": "", "name": "db"}]},
])
def test_target_refs_do_not_apply_to_sidecars(target):
    d = ev([ap("waypoint", **target)])
    assert d.allowed and d.action == "NONE"
    assert any("app/waypoint" in n and "targetRefs" in n for n in d.notes)


def test_dry_run_policy_enforces_nothing():
    d = ev([ap("trial", action="DENY", rules=[{}], annotations={"istio.io/dry-run": "true"})])
    assert d.allowed and any("dry-run" in n for n in d.notes)


def test_v1beta1_behaves_like_v1():
    for api in ("security.istio.io/v1beta1", "security.istio.io/v1"):
        allow = ap("allow", api=api, rules=[src(principals=[CLIENT])])
        assert ev([allow]).allowed
        assert not ev([allow], principal=OTHER).allowed


# ------------------------------------------------------------------------------------------ allow-nothing / allow-all

def test_allow_nothing():
    d = ev([ap("allow-nothing")])
    assert not d.allowed and d.action == "ALLOW" and d.nearest == ()
    assert d.reason == f"no ALLOW policy admits {CLIENT} on 8080: app/allow-nothing (no rules: allows nothing)"


def test_empty_rules_list_allows_nothing():
    assert not ev([ap("empty", rules=[])]).allowed


def test_allow_all_rule():
    d = ev([ap("allow-all", rules=[{}])], principal=None)
    assert d.allowed and d.matched == ("app/allow-all", 0)


def test_deny_without_rules_does_nothing_and_deny_all_denies():
    assert ev([ap("deny-nothing", action="DENY")]).allowed
    assert not ev([ap("deny-all", action="DENY", rules=[{}])]).allowed


def test_allow_nothing_plus_allow_rule_is_union():
    assert ev([ap("allow-nothing"), ALLOW_CLIENT]).allowed


# ------------------------------------------------------------------------------------------ principals

@pytest.mark.parametrize("pattern,allowed", [
    (CLIENT, True), ("cluster.local/ns/client-ns/*", True), ("*/sa/client", True), ("*", True),
    ("cluster.local/ns/other/*", False), ("*/sa/other", False),
])
def test_principal_patterns(pattern, allowed):
    assert ev([ap("p", rules=[src(principals=[pattern])])]).allowed is allowed


def test_principals_values_are_ored():
    assert ev([ap("p", rules=[src(principals=[OTHER, CLIENT])])]).allowed


def test_spiffe_prefix_on_source_principal():
    assert ev([ALLOW_CLIENT], principal="spiffe://" + CLIENT).allowed


def test_not_principals_excludes():
    p = ap("not-client", rules=[src(notPrincipals=[CLIENT])])
    d = ev([p])
    assert not d.allowed
    assert d.nearest[0].fields == ("notPrincipals",)
    assert d.nearest[0].lacks == (f"principal {CLIENT} (excluded by notPrincipals)",)
    assert ev([p], principal=OTHER).allowed


def test_plaintext_does_not_match_allow_principals():
    d = ev([ALLOW_CLIENT], principal=None)
    assert not d.allowed
    assert d.nearest[0].fields == ("mtls",)
    assert "plaintext traffic from namespace client-ns" in d.reason
    assert "lacks mTLS" in d.reason


def test_plaintext_does_not_match_deny_principals():
    deny = ap("deny-client", action="DENY", rules=[src(principals=["*"])])
    assert ev([deny], principal=None).allowed


def test_deny_not_principals_star_refuses_plaintext_only():
    deny_plaintext = ap("require-mtls", action="DENY", rules=[src(notPrincipals=["*"])])
    assert not ev([deny_plaintext], principal=None).allowed
    assert ev([deny_plaintext]).allowed


def test_allow_not_principals_admits_plaintext():
    p = ap("not-other", rules=[src(notPrincipals=[OTHER])])
    assert ev([p], principal=None).allowed


# ------------------------------------------------------------------------------------------ namespaces

@pytest.mark.parametrize("namespaces,allowed", [
    (["client-ns"], True), (["client-*"], True), (["*-ns"], True), (["other"], False), (["*"], True),
])
def test_namespaces(namespaces, allowed):
    assert ev([ap("n", rules=[src(namespaces=namespaces)])]).allowed is allowed


def test_namespace_lack_names_the_namespace():
    d = ev([ap("n", rules=[src(namespaces=["other"])])])
    assert d.nearest[0].lacks == ("namespace client-ns",)


def test_namespaces_need_mtls():
    p = ap("n", rules=[src(namespaces=["client-ns"])])
    d = ev([p], principal=None)
    assert not d.allowed and d.nearest[0].fields == ("mtls",)


def test_not_namespaces():
    p = ap("n", rules=[src(notNamespaces=["client-ns"])])
    assert not ev([p]).allowed
    assert ev([p], principal=OTHER).allowed


# ------------------------------------------------------------------------------------------ serviceAccounts

def test_service_accounts_match_any_trust_domain():
    p = ap("sa", rules=[src(serviceAccounts=["client-ns/client"])])
    assert ev([p]).allowed
    assert ev([p], principal="example.org/ns/client-ns/sa/client").allowed
    d = ev([p], principal=OTHER)
    assert not d.allowed and d.nearest[0].lacks == ("service account other/web",)


def test_bare_service_account_is_in_policy_namespace():
    p = ap("sa", ns="client-ns", rules=[src(serviceAccounts=["client"])])
    assert ev([p], ns="client-ns").allowed
    assert not ev([p], ns="client-ns", principal="cluster.local/ns/x/sa/client").allowed


def test_service_accounts_are_exact_and_need_mtls():
    p = ap("sa", rules=[src(serviceAccounts=["client-ns/cli"])])
    assert not ev([p]).allowed
    assert not ev([ap("sa", rules=[src(serviceAccounts=["client-ns/client"])])], principal=None).allowed


def test_not_service_accounts():
    p = ap("sa", rules=[src(notServiceAccounts=["client-ns/client"])])
    assert not ev([p]).allowed
    assert ev([p], principal=OTHER).allowed


# ------------------------------------------------------------------------------------------ ports

def test_ports_match_destination_port():
    p = ap("ports", rules=[op(ports=["8080", "9090"])])
    assert ev([p], port=9090).allowed
    d = ev([p], port=4500)
    assert not d.allowed and d.nearest[0].lacks == ("port 4500",)


def test_integer_ports_from_yaml():
    assert ev([ap("ports", rules=[op(ports=[8080])])]).allowed


def test_not_ports():
    p = ap("ports", rules=[op(notPorts=["8080"])])
    assert not ev([p]).allowed
    assert ev([p], port=8081).allowed


def test_from_and_to_are_anded():
    p = ap("both", rules=[{**src(principals=[CLIENT]), **op(ports=["8080"])}])
    assert ev([p]).allowed
    assert not ev([p], port=9090).allowed
    assert not ev([p], principal=OTHER).allowed
    d = ev([p], principal=OTHER, port=9090)
    assert d.nearest[0].fields == ("principals", "ports")


def test_fields_within_source_are_anded():
    p = ap("both", rules=[src(principals=[CLIENT], namespaces=["other"])])
    assert not ev([p]).allowed


def test_from_entries_are_ored():
    p = ap("either", rules=[{"from": [{"source": {"principals": [OTHER]}}, {"source": {"namespaces": ["client-ns"]}}]}])
    assert ev([p]).allowed


def test_to_entries_are_ored():
    p = ap("either", rules=[{"to": [{"operation": {"ports": ["1"]}}, {"operation": {"ports": ["8080"]}}]}])
    assert ev([p]).allowed


# ------------------------------------------------------------------------------------------ HTTP-only fields on TCP

def test_allow_with_methods_on_tcp_never_matches():
    p = ap("get-only", rules=[{**src(principals=[CLIENT]), **op(methods=["GET"])}])
    d = ev([p])
    assert not d.allowed
    assert d.nearest[0].fields == ("http",)
    assert any("Istio ignores the rule for TCP" in n for n in d.notes)
    assert "lacks HTTP" in d.reason


def test_allow_rule_with_any_http_operation_is_dropped_whole_on_tcp():
    # one `to` entry is port-only, but Istio drops the whole rule from the TCP filter
    p = ap("mixed", rules=[{"to": [{"operation": {"ports": ["8080"]}}, {"operation": {"methods": ["GET"]}}]}])
    assert not ev([p]).allowed
    assert ev([p], is_http=True).allowed


@pytest.mark.parametrize("rule", [
    src(requestPrincipals=["issuer/subject"]),
    op(paths=["/x"]),
    op(hosts=["db.example"]),
    op(notMethods=["DELETE"]),
    {"when": [{"key": "request.headers[x-user]", "values": ["a"]}]},
    {"when": [{"key": "request.auth.claims[iss]", "values": ["https://issuer"]}]},
])
def test_allow_http_fields_on_tcp(rule):
    assert not ev([ap("http", rules=[rule])]).allowed


def test_deny_with_methods_and_port_on_tcp_denies_that_port():
    deny = ap("deny-post", action="DENY", rules=[op(methods=["POST"], ports=["8080"])])
    d = ev([deny], port=8080)
    assert not d.allowed and d.action == "DENY"
    assert any("treats them as matching" in n for n in d.notes)
    assert ev([deny], port=9090).allowed


def test_deny_with_methods_only_on_tcp_denies_all_tcp():
    deny = ap("deny-post", action="DENY", rules=[op(methods=["POST"])])
    assert not ev([deny], port=1234).allowed


@pytest.mark.parametrize("rule", [
    src(requestPrincipals=["*"]),
    {"when": [{"key": "request.headers[x-user]", "values": ["a"]}]},
    op(notPaths=["/health"]),
])
def test_deny_http_fields_on_tcp_match(rule):
    assert not ev([ap("deny", action="DENY", rules=[rule])]).allowed


# ------------------------------------------------------------------------------------------ HTTP ports

def test_http_allow_without_request_details_is_conditional():
    p = ap("get-only", rules=[{**src(principals=[CLIENT]), **op(methods=["GET"])}])
    d = ev([p], is_http=True)
    assert d.allowed and d.conditional
    assert "only for requests with methods GET" in d.reason


def test_http_allow_with_request_details():
    p = ap("get-only", rules=[{**src(principals=[CLIENT]), **op(methods=["GET"])}])
    d = ev([p], is_http=True, request={"method": "GET"})
    assert d.allowed and not d.conditional
    d = ev([p], is_http=True, request={"method": "POST"})
    assert not d.allowed and d.nearest[0].lacks == ("method POST",)


@pytest.mark.parametrize("pattern,path,matches", [
    ("/api/*", "/api/users?x=1", True), ("/api/*", "/other", False), ("*.json", "/a/b.json", True),
    ("/users/{*}/profile", "/users/42/profile", True), ("/users/{*}/profile", "/users/4/2/profile", False),
    ("/files/{**}", "/files/a/b/c", True), ("/exact", "/exact", True), ("/exact", "/exact/", False),
])
def test_paths(pattern, path, matches):
    p = ap("paths", rules=[op(paths=[pattern])])
    assert ev([p], is_http=True, request={"path": path}).allowed is matches


def test_hosts_ignore_case_and_port():
    p = ap("hosts", rules=[op(hosts=["DB.example.com"])])
    assert ev([p], is_http=True, request={"host": "db.example.com:8080"}).allowed
    assert not ev([p], is_http=True, request={"host": "web.example.com"}).allowed


def test_any_path_matches_every_http_request():
    assert ev([ap("any", rules=[op(paths=["*"])])], is_http=True).allowed


def test_http_deny_without_request_details_is_not_a_full_denial():
    deny = ap("deny-admin", action="DENY", rules=[op(paths=["/admin*"])])
    d = ev([deny], is_http=True)
    assert d.allowed and d.conditional
    assert any("refuses" in n and "paths /admin*" in n for n in d.notes)
    assert not ev([deny], is_http=True, request={"path": "/admin/users"}).allowed
    assert ev([deny], is_http=True, request={"path": "/public"}).allowed


def test_request_headers_condition():
    p = ap("hdr", rules=[{"when": [{"key": "request.headers[X-User]", "values": ["alice"]}]}])
    assert ev([p], is_http=True, request={"headers": {"x-user": "alice"}}).allowed
    assert not ev([p], is_http=True, request={"headers": {"x-user": "bob"}}).allowed
    assert not ev([p], is_http=True, request={"headers": {}}).allowed
    assert ev([p], is_http=True).conditional


def test_request_principals_on_http():
    p = ap("jwt", rules=[src(requestPrincipals=["https://issuer/*"])])
    assert ev([p], is_http=True, request={"request_principal": "https://issuer/alice"}).allowed
    assert not ev([p], is_http=True, request={"request_principal": "https://other/alice"}).allowed


# ------------------------------------------------------------------------------------------ when

def test_when_destination_port():
    p = ap("w", rules=[{"when": [{"key": "destination.port", "values": ["8080"]}]}])
    assert ev([p]).allowed
    d = ev([p], port=9090)
    assert not d.allowed and d.nearest[0].fields == ("when:destination.port",)
    assert "when destination.port" in d.reason


def test_when_not_values():
    p = ap("w", rules=[{"when": [{"key": "destination.port", "notValues": ["8080"]}]}])
    assert not ev([p]).allowed
    assert ev([p], port=9090).allowed


def test_when_conditions_are_anded():
    p = ap("w", rules=[{"when": [{"key": "destination.port", "values": ["8080"]},
                                 {"key": "source.namespace", "values": ["other"]}]}])
    assert not ev([p]).allowed


def test_when_source_namespace_and_principal():
    ns = ap("w", rules=[{"when": [{"key": "source.namespace", "values": ["client-*"]}]}])
    pr = ap("w", rules=[{"when": [{"key": "source.principal", "values": [CLIENT]}]}])
    assert ev([ns]).allowed and ev([pr]).allowed
    assert not ev([ns], principal=OTHER).allowed and not ev([pr], principal=OTHER).allowed
    assert not ev([ns], principal=None).allowed


def test_when_unknown_key_on_allow_does_not_match_with_note():
    p = ap("sni", rules=[{"when": [{"key": "connection.sni", "values": ["db.local"]}]}])
    d = ev([p])
    assert not d.allowed and any("connection.sni" in n for n in d.notes)


def test_when_unknown_key_on_deny_matches_with_note():
    deny = ap("sni", action="DENY", rules=[{"when": [{"key": "destination.ip", "values": ["10.0.0.1"]}]}])
    d = ev([deny])
    assert not d.allowed and any("destination.ip" in n for n in d.notes)


def test_source_ip_when_and_ip_blocks():
    when = ap("ip", rules=[{"when": [{"key": "source.ip", "values": ["10.1.0.0/16"]}]}])
    blocks = ap("ip", rules=[src(ipBlocks=["10.1.0.0/16"])])
    for p in (when, blocks):
        assert ev([p], source_ip="10.1.2.3").allowed
        assert not ev([p], source_ip="10.2.0.1").allowed
        d = ev([p])  # no source IP known
        assert not d.allowed and any("without the source IP" in n for n in d.notes)
    assert not ev([ap("ip", rules=[src(notIpBlocks=["10.1.0.0/16"])])], source_ip="10.1.2.3").allowed


# ------------------------------------------------------------------------------------------ nearest misses

def test_nearest_miss_ranking_and_reason():
    exporter = principal_of("database", "fdb-exporter")
    fdb_allow = ap("fdb-allow", ns="database", selector={"app": "fdb"},
                   rules=[{**src(principals=[principal_of("database", "fdb-client")]), **op(ports=["4500"])}])
    admin = ap("admin", ns="database", rules=[{**src(principals=[principal_of("ops", "admin")]),
                                               **op(ports=["22"])}])
    d = evaluate_authz([admin, fdb_allow], ROOT, "database", {"app": "fdb"}, exporter, "database", 4500, False)
    assert not d.allowed
    assert [(n.policy, n.rule_index) for n in d.nearest] == [("database/fdb-allow", 0), ("database/admin", 0)]
    assert d.nearest[0].lacks == (f"principal {exporter}",)
    assert d.nearest[0].fields == ("principals",)
    assert d.nearest[1].lacks == (f"principal {exporter}", "port 4500")
    assert d.reason == (f"no ALLOW policy admits {exporter} on 4500: database/admin (rule 0 lacks principal, port), "
                        "database/fdb-allow (rule 0 lacks principal)")
    assert set(d.applicable_allow) == {"database/fdb-allow", "database/admin"}


def test_nearest_picks_the_closest_source_of_a_rule():
    p = ap("p", rules=[{"from": [{"source": {"principals": [OTHER], "namespaces": ["other"]}},
                                 {"source": {"namespaces": ["other"]}}]}])
    d = ev([p])
    assert d.nearest[0].lacks == ("namespace client-ns",)


def test_nearest_lists_every_rule_sorted():
    p = ap("p", rules=[{**src(principals=[OTHER]), **op(ports=["1"])}, src(principals=[OTHER])])
    d = ev([p])
    assert [(n.rule_index, len(n.lacks)) for n in d.nearest] == [(1, 1), (0, 2)]


def test_to_dict_is_json():
    d = ev([ALLOW_CLIENT], principal=OTHER)
    out = json.loads(json.dumps(d.to_dict()))
    assert out["allowed"] is False and out["action"] == "ALLOW"
    assert out["nearest"][0] == {"policy": "app/allow-client", "rule_index": 0,
                                 "lacks": [f"principal {OTHER}"], "fields": ["principals"]}
    assert json.loads(json.dumps(ev([ALLOW_CLIENT]).to_dict()))["matched"] == {"policy": "app/allow-client",
                                                                                "rule_index": 0}


def test_malformed_input_does_not_crash():
    d = ev([{"kind": "AuthorizationPolicy"}, "junk", {"metadata": {"name": "x", "namespace": "app"},
                                                       "spec": {"rules": "nope"}}])
    assert not d.allowed  # the last one is an ALLOW policy with no usable rules: allow-nothing


# ------------------------------------------------------------------------------------------ mesh membership

def pod(containers=(), init=(), labels=None, annotations=None, ns="app", status=False) -> dict:
    obj = {"kind": "Pod", "metadata": {"name": "p", "namespace": ns, "labels": labels or {},
                                       "annotations": annotations or {}},
           "spec": {"containers": [{"name": c} for c in containers],
                    "initContainers": [{"name": c, "restartPolicy": "Always"} for c in init]}}
    if status:
        obj["status"] = {"phase": "Running"}
    return obj


def namespace(labels=None, name="app") -> dict:
    return {"kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}


def test_sidecar_container_means_mesh():
    assert in_mesh(pod(["app", "istio-proxy"]), namespace())


def test_native_sidecar_init_container_means_mesh():
    assert in_mesh(pod(["app"], init=["istio-init", "istio-proxy"]), namespace())


def test_tls_mode_label_means_mesh():
    assert in_mesh(pod(["app"], labels={"security.istio.io/tlsMode": "istio"}), None)


def test_injection_enabled_namespace():
    assert in_mesh(pod(["app"]), namespace({"istio-injection": "enabled"}))
    assert not in_mesh(pod(["app"]), namespace({"istio-injection": "disabled"}))


def test_revision_label_namespace():
    m = mesh_membership(pod(["app"]), namespace({"istio.io/rev": "1-22"}))
    assert m.in_mesh and "istio.io/rev=1-22" in m.reason


def test_pod_opt_out_by_label_or_annotation():
    ns = namespace({"istio-injection": "enabled"})
    assert not in_mesh(pod(["app"], labels={"sidecar.istio.io/inject": "false"}), ns)
    assert not in_mesh(pod(["app"], annotations={"sidecar.istio.io/inject": "false"}), ns)


def test_opt_out_does_not_undo_an_injected_sidecar():
    assert in_mesh(pod(["app", "istio-proxy"], labels={"sidecar.istio.io/inject": "false"}), namespace())


def test_pod_opt_in_label():
    assert in_mesh(pod(["app"], labels={"sidecar.istio.io/inject": "true"}), namespace())
    assert not in_mesh(pod(["app"], labels={"sidecar.istio.io/inject": "true"}),
                       namespace({"istio-injection": "disabled"}))


def test_not_in_mesh_by_default():
    m = mesh_membership(pod(["app"]), namespace())
    assert not m.in_mesh and m.reason
    assert not in_mesh(None, None)


def test_pod_template_labels():
    ns = namespace({"istio-injection": "enabled"})
    assert in_mesh(None, ns, template_labels={"app": "db"})
    assert not in_mesh(None, ns, template_labels={"sidecar.istio.io/inject": "false"})
    assert in_mesh(None, None, template_labels={"security.istio.io/tlsMode": "istio"})


def test_running_pod_without_sidecar_gets_a_caveat():
    m = mesh_membership(pod(["app"], status=True), namespace({"istio-injection": "enabled"}))
    assert m.in_mesh and "restarted" in m.reason


# ------------------------------------------------------------------------------------------ PeerAuthentication

def pa(name, ns, mode=None, selector=None, ports=None, created="2024-01-01T00:00:00Z") -> dict:
    spec: dict = {}
    if mode:
        spec["mtls"] = {"mode": mode}
    if selector is not None:
        spec["selector"] = {"matchLabels": selector}
    if ports is not None:
        spec["portLevelMtls"] = {k: {"mode": v} for k, v in ports.items()}
    return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": created}, "spec": spec}


DB = {"app": "db"}


def mt(pas, port=8080, ns="app", labels=DB):
    return mtls_decision(pas, ROOT, ns, labels, port)


def test_nothing_means_permissive():
    d = mt([])
    assert (d.mode, d.decided_by, d.level) == ("PERMISSIVE", None, "default")


def test_mesh_wide_strict():
    d = mt([pa("default", ROOT, "STRICT")])
    assert (d.mode, d.decided_by, d.level) == ("STRICT", "istio-system/default", "mesh")


def test_namespace_overrides_mesh():
    d = mt([pa("default", ROOT, "STRICT"), pa("ns", "app", "PERMISSIVE")])
    assert (d.mode, d.decided_by, d.level) == ("PERMISSIVE", "app/ns", "namespace")


def test_workload_overrides_namespace():
    d = mt([pa("ns", "app", "STRICT"), pa("db", "app", "DISABLE", selector=DB)])
    assert (d.mode, d.decided_by, d.level) == ("DISABLE", "app/db", "workload")


def test_workload_selector_must_match():
    d = mt([pa("ns", "app", "STRICT"), pa("web", "app", "DISABLE", selector={"app": "web"})])
    assert d.decided_by == "app/ns"


def test_unset_inherits_upwards():
    pas = [pa("mesh", ROOT, "STRICT"), pa("ns", "app", "UNSET"), pa("db", "app", None, selector=DB)]
    d = mt(pas)
    assert (d.mode, d.decided_by, d.level) == ("STRICT", "istio-system/mesh", "mesh")
    assert "UNSET" in d.reason


def test_all_unset_is_permissive():
    assert mt([pa("mesh", ROOT, "UNSET")]).mode == "PERMISSIVE"


def test_port_level_mtls():
    pas = [pa("db", "app", "STRICT", selector=DB, ports={8080: "DISABLE", "9090": "PERMISSIVE"})]
    assert (mt(pas, port=8080).mode, mt(pas, port=8080).level) == ("DISABLE", "port")
    assert mt(pas, port=9090).mode == "PERMISSIVE"
    assert (mt(pas, port=7000).mode, mt(pas, port=7000).level) == ("STRICT", "workload")


def test_port_level_unset_inherits_workload_then_namespace():
    pas = [pa("ns", "app", "STRICT"), pa("db", "app", None, selector=DB, ports={8080: "UNSET"})]
    assert (mt(pas).mode, mt(pas).decided_by) == ("STRICT", "app/ns")


def test_port_level_without_selector_is_ignored():
    assert mt([pa("ns", "app", "STRICT", ports={8080: "DISABLE"})]).mode == "STRICT"


def test_other_namespace_and_root_selector_scope():
    assert mt([pa("ns", "other", "STRICT")]).mode == "PERMISSIVE"
    # a selector policy in the root namespace is a workload policy there, not mesh-wide
    assert mt([pa("db", ROOT, "STRICT", selector=DB)]).mode == "PERMISSIVE"
    assert mt([pa("db", ROOT, "STRICT", selector=DB)], ns=ROOT).mode == "STRICT"


def test_oldest_policy_wins_within_a_level():
    pas = [pa("new", "app", "DISABLE", selector=DB, created="2025-01-01T00:00:00Z"),
           pa("old", "app", "STRICT", selector=DB, created="2023-01-01T00:00:00Z")]
    assert mt(pas).decided_by == "app/old"


def test_mtls_mode_returns_the_string():
    assert mtls_mode([pa("default", ROOT, "STRICT")], ROOT, "app", DB, 8080) == "STRICT"
    assert mt([pa("default", ROOT, "STRICT")]).to_dict()["decided_by"] == "istio-system/default"


# ------------------------------------------------------------------------------------------ notes and shape

def test_notes_come_only_from_rules_that_mattered():
    # a DENY rule with HTTP fields on another port neither matches nor explains anything
    deny = ap("deny-post", action="DENY", rules=[op(methods=["POST"], ports=["9090"])])
    assert ev([deny], port=8080).notes == ()
    # an ALLOW rule ignored on TCP is explained when the connection ends up denied ...
    get_only = ap("get-only", rules=[op(methods=["GET"])])
    assert any("get-only" in n for n in ev([get_only]).notes)
    # ... and not when another rule admits it
    assert ev([get_only, ALLOW_CLIENT]).notes == ()


def test_conditional_deny_with_full_allow():
    deny = ap("deny-admin", action="DENY", rules=[op(paths=["/admin*"])])
    d = ev([deny, ALLOW_CLIENT], is_http=True)
    assert d.allowed and d.action == "ALLOW" and d.conditional
    assert any("deny-admin" in n for n in d.notes)


def test_decision_is_immutable():
    d = ev([])
    with pytest.raises(AttributeError):
        d.allowed = False  # type: ignore[misc]


def test_pod_dict_built_from_a_workload_template():
    template = {"metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db"}], "initContainers": [{"name": "istio-proxy"}]}}
    assert in_mesh({"metadata": {"namespace": "app", **template["metadata"]}, "spec": template["spec"]}, None)
    bare = {"metadata": {"namespace": "app", "labels": {"app": "db"}}, "spec": {"containers": [{"name": "db"}]}}
    m = mesh_membership(bare, namespace({"istio-injection": "enabled"}))
    assert m.in_mesh and "restarted" not in m.reason  # a template has no status: it will be injected
