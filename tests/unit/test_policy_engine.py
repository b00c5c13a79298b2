"""The engine around the semantics: naming things, Hubble endpoints, owners, what-if views, live updates,
and the Istio layer of a trace."""

from __future__ import annotations

import pytest
import yaml

from hubbletui.cluster.model import ClusterState
from hubbletui.cluster.snapshot import add_object
from hubbletui.errors import HubbleTuiError
from hubbletui.flows.model import Endpoint
from hubbletui.policy.engine import PolicyEngine
from hubbletui.policy.ports import PortSet

CLUSTER = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {kubernetes.io/metadata.name: shop}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: api-7d9f
  namespace: shop
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: api, controller: true}]
spec: {template: {metadata: {labels: {app: api, pod-template-hash: 7d9f}}}}
---
apiVersion: v1
kind: Pod
metadata:
  name: api-7d9f-abcde
  namespace: shop
  labels: {app: api, pod-template-hash: 7d9f}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: api-7d9f, controller: true}]
spec: {serviceAccountName: api, containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.2.0.5, podIPs: [{ip: 10.2.0.5}, {ip: "fd00::5"}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: front, namespace: shop}
spec: {template: {metadata: {labels: {app: front}}, spec: {containers: [{name: c}]}}}
---
apiVersion: v1
kind: Pod
metadata:
  name: front-5c4b-xyz12
  namespace: shop
  labels: {app: front, pod-template-hash: 5c4b}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: front-5c4b, controller: true}]
spec: {containers: [{name: c}]}
status: {podIP: 10.2.0.6}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: shop}
spec: {jobTemplate: {spec: {template: {metadata: {labels: {app: report}}, spec: {serviceAccountName: reporter}}}}}
---
apiVersion: v1
kind: Pod
metadata:
  name: nightly-28000000-q1
  namespace: shop
  labels: {app: nightly}
  ownerReferences: [{apiVersion: batch/v1, kind: Job, name: nightly-28000000, controller: true}]
spec: {containers: [{name: c}]}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: nightly-28000000
  namespace: shop
  ownerReferences: [{apiVersion: batch/v1, kind: CronJob, name: nightly, controller: true}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: shop}
spec: {jobTemplate: {spec: {template: {metadata: {labels: {app: nightly}}}}}}
"""

API_INGRESS = {
    "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
    "metadata": {"name": "api-in", "namespace": "shop"},
    "spec": {"podSelector": {"matchLabels": {"app": "api"}},
             "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "front"}}}],
                          "ports": [{"port": "http"}]}]}}


def make_state(*extra: dict) -> ClusterState:
    state = ClusterState()
    for obj in yaml.safe_load_all(CLUSTER):
        add_object(state, obj)
    for obj in extra:
        add_object(state, obj)
    return state


# --- naming ------------------------------------------------------------------------------------------

def test_pods_are_named_by_their_owning_workload():
    eng = PolicyEngine(make_state())
    api = eng.resolve("shop/api-7d9f-abcde")
    assert api.workload == ("Deployment", "api") and api.workload_ref == "shop/api"
    # the ReplicaSet object is absent: the pod-template-hash and the Deployment name still tie them
    assert eng.resolve("shop/front-5c4b-xyz12").workload == ("Deployment", "front")
    assert eng.resolve("shop/nightly-28000000-q1").workload == ("CronJob", "nightly")


def test_workload_references_and_pod_templates():
    eng = PolicyEngine(make_state())
    assert eng.resolve("shop/api").id == "shop/api-7d9f-abcde"  # a workload with pods: its first pod
    report = eng.resolve("shop/report")  # a CronJob without pods: its job template's pod template
    assert report.kind == "workload" and report.service_account == "reporter"
    assert "k8s:app=report" in report.labels.hubble_form()
    assert eng.resolve("shop/cronjob/report") is report
    names = sorted(s.workload_ref for s in eng.endpoints() if s.namespace == "shop")
    # the ReplicaSet folds into its Deployment and the Job into its CronJob: one subject each
    assert names == ["shop/api", "shop/front", "shop/nightly", "shop/report"]


def test_entities_ips_and_dns_names():
    eng = PolicyEngine(make_state())
    assert eng.resolve("world").labels.reserved() == ["world"]
    assert eng.resolve("reserved:host").labels.reserved() == ["host"]
    assert eng.resolve("10.2.0.5").id == "shop/api-7d9f-abcde"
    assert eng.resolve("fd00:0::5").id == "shop/api-7d9f-abcde"
    outside = eng.resolve("192.0.2.10")
    assert outside.kind == "ip" and outside.is_world and not outside.is_endpoint
    assert eng.resolve("api.example.com").dns_names == ("api.example.com",)


@pytest.mark.parametrize("ref, message", [
    ("shop/nothing", "no pod or workload named 'nothing'"),
    ("ghost/api", "namespace 'ghost' is not in the cluster state"),
    ("shop/Gizmo/api", "not a workload kind"),
    ("not a ref", "cannot read"),
])
def test_bad_references_are_one_line_errors(ref, message):
    with pytest.raises(HubbleTuiError, match=message):
        PolicyEngine(make_state()).resolve(ref)


def test_bad_ports_and_protocols():
    eng = PolicyEngine(make_state())
    with pytest.raises(HubbleTuiError, match="unknown protocol"):
        eng.trace("shop/front", "shop/api", 80, "GRE")
    with pytest.raises(HubbleTuiError, match="out of range"):
        eng.trace("shop/front", "shop/api", 70000)


# --- Hubble endpoints -----------------------------------------------------------------------------------

def endpoint(ns="", pod="", labels=(), identity=0, workloads=(), ip="") -> Endpoint:
    return Endpoint(ns, pod, tuple(labels), identity, tuple(workloads), ip, "default")


def test_endpoint_of_a_known_pod_is_that_pod():
    eng = PolicyEngine(make_state())
    s = eng.subject_for_endpoint(endpoint("shop", "api-7d9f-abcde", ["k8s:app=api"], 1234))
    assert s is not None and s.id == "shop/api-7d9f-abcde" and s.named_ports
    assert any("differ from the cluster state" in n for n in s.notes)  # Hubble sent fewer labels


def test_endpoint_of_an_unknown_pod_of_a_known_workload_uses_the_workload():
    eng = PolicyEngine(make_state())
    s = eng.subject_for_endpoint(endpoint("shop", "api-7d9f-zzzzz", [], 1234, [("Deployment", "api")], "10.2.0.99"))
    assert s.id == "shop/api-7d9f-zzzzz" and s.workload == ("Deployment", "api")
    assert s.named_ports == {"http": ((8080, "TCP"),)}


def test_endpoint_unknown_to_the_state_is_built_from_hubble_labels():
    eng = PolicyEngine(make_state(API_INGRESS))
    labels = ["k8s:app=front", "k8s:io.kubernetes.pod.namespace=shop",
              "k8s:io.cilium.k8s.policy.cluster=prod-eu", "k8s:io.cilium.k8s.policy.serviceaccount=default"]
    src = eng.subject_for_endpoint(endpoint("shop", "front-new", labels, 4321, [("Deployment", "front2")]))
    assert src.kind == "flow" and src.is_endpoint
    assert eng.trace(src, "shop/api", 8080).verdict == "allowed"


def test_reserved_endpoints():
    eng = PolicyEngine(make_state())
    world = eng.subject_for_endpoint(endpoint(labels=["reserved:world", "reserved:world-ipv4"], identity=9,
                                              ip="198.51.100.1"))
    assert world.kind == "ip" and world.ip == "198.51.100.1" and not world.is_endpoint
    host = eng.subject_for_endpoint(endpoint(labels=["reserved:host"], identity=1, ip="10.0.0.1"))
    assert host.id == "host"
    by_number = eng.subject_for_endpoint(endpoint(identity=6, ip="10.0.0.2"))
    assert by_number.labels.reserved() == ["remote-node"]


# --- what-if views and blast radius ------------------------------------------------------------------------

def test_what_if_adding_a_policy_leaves_the_base_alone():
    eng = PolicyEngine(make_state())
    isolate = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "deny", "namespace": "shop"}, "spec": {"podSelector": {}}}
    view = eng.what_if(upserts=[isolate])
    assert view.trace("shop/front", "shop/api", 8080).verdict == "denied"
    assert eng.trace("shop/front", "shop/api", 8080).verdict == "allowed"
    assert view.newly_allowed() == []  # it only takes away
    back = view.what_if(deletes=[("NetworkPolicy", "shop", "deny")])
    assert back.trace("shop/front", "shop/api", 8080).verdict == "allowed"
    assert {(n.src.workload_ref, n.dst.workload_ref) for n in back.newly_allowed()} >= {("shop/front", "shop/api")}


def test_newly_allowed_of_an_allow_rule_is_exactly_what_it_opens():
    isolate = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "deny", "namespace": "shop"}, "spec": {"podSelector": {}}}
    eng = PolicyEngine(make_state(isolate))
    view = eng.what_if(upserts=[API_INGRESS])
    opened = view.newly_allowed()
    assert [(n.src.workload_ref, n.dst.workload_ref, n.ports) for n in opened] == [
        ("shop/front", "shop/api", PortSet({"TCP": [(8080, 8080)]}))]
    assert opened[0].to_dict()["text"] == "shop/front -> shop/api: TCP 8080"


def test_newly_allowed_of_a_template_label_change():
    isolate = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "deny", "namespace": "shop"}, "spec": {"podSelector": {}}}
    state = make_state(isolate, API_INGRESS)
    eng = PolicyEngine(state)
    assert eng.trace("shop/report", "shop/api", 8080).verdict == "denied"
    cronjob = state.get("CronJob", "shop", "report")
    relabelled = yaml.safe_load(yaml.safe_dump(cronjob))
    relabelled["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"] = {"app": "front"}
    view = eng.what_if(upserts=[relabelled])
    assert view.trace("shop/report", "shop/api", 8080).verdict == "allowed"
    opened = {(n.src.workload_ref, n.dst.workload_ref) for n in view.newly_allowed()}
    assert opened == {("shop/report", "shop/api")}


def test_removing_a_deny_rule_is_counted_in_the_blast_radius():
    deny = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "no-front", "namespace": "shop"},
            "spec": {"endpointSelector": {"matchLabels": {"app": "api"}},
                     "ingressDeny": [{"fromEndpoints": [{"matchLabels": {"app": "front"}}]}],
                     "ingress": [{"fromEntities": ["all"]}]}}
    eng = PolicyEngine(make_state(deny))
    view = eng.what_if(deletes=[deny])
    pairs = {(n.src.workload_ref, n.dst.workload_ref): n.ports for n in view.newly_allowed()}
    assert pairs == {("shop/front", "shop/api"): PortSet.all()}


# --- live updates ----------------------------------------------------------------------------------------

def test_following_the_state_applies_changes():
    state = make_state()
    eng = PolicyEngine(state, follow=True)
    seen = []
    eng.subscribe(lambda engine, keys, namespaces: seen.append((keys, namespaces)))
    isolate = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "deny", "namespace": "shop"}, "spec": {"podSelector": {}}}
    state.upsert(isolate)
    assert eng.trace("shop/front", "shop/api", 8080).verdict == "denied"
    state.upsert(API_INGRESS)
    assert eng.trace("shop/front", "shop/api", 8080).verdict == "allowed"
    pod = state.get("Pod", "shop", "front-5c4b-xyz12")
    state.upsert({**pod, "metadata": {**pod["metadata"], "labels": {"app": "other"}}})
    assert eng.trace("shop/front-5c4b-xyz12", "shop/api", 8080).verdict == "denied"
    state.delete("NetworkPolicy", ("shop", "deny"))
    assert eng.trace("shop/front-5c4b-xyz12", "shop/api", 8080).verdict == "denied"  # api-in still isolates
    state.delete("NetworkPolicy", ("shop", "api-in"))
    assert eng.trace("shop/front-5c4b-xyz12", "shop/api", 8080).verdict == "allowed"
    assert len(seen) == 5
    eng.close()
    state.upsert(isolate)
    assert eng.trace("shop/front-5c4b-xyz12", "shop/api", 8080).verdict == "allowed"


# --- Istio -------------------------------------------------------------------------------------------------

MESH = """
apiVersion: v1
kind: Namespace
metadata: {name: mesh, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Pod
metadata: {name: ratings, namespace: mesh, labels: {app: ratings}}
spec: {serviceAccountName: ratings, containers: [{name: app}, {name: istio-proxy}]}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews, namespace: mesh, labels: {app: reviews}}
spec: {serviceAccountName: reviews, containers: [{name: app}, {name: istio-proxy}]}
---
apiVersion: v1
kind: Pod
metadata: {name: legacy, namespace: shop, labels: {app: legacy}}
spec: {containers: [{name: app}]}
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: mesh}
spec: {selector: {app: ratings}, ports: [{name: http, port: 9080}, {name: tcp-db, port: 5432}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ratings-viewer, namespace: mesh}
spec:
  selector: {matchLabels: {app: ratings}}
  action: ALLOW
  rules:
  - from: [{source: {principals: [cluster.local/ns/mesh/sa/reviews]}}]
"""


def mesh_engine(*extra: str) -> PolicyEngine:
    state = make_state()
    for text in (MESH, *extra):
        for obj in yaml.safe_load_all(text):
            add_object(state, obj)
    return PolicyEngine(state)


def test_istio_layer_allows_the_named_principal_only():
    eng = mesh_engine()
    ok = eng.trace("mesh/reviews", "mesh/ratings", 9080)
    assert [layer.layer for layer in ok.layers] == ["egress", "ingress", "istio"]
    assert ok.verdict == "allowed"
    assert ok.layer("istio").mesh.source_principal == "cluster.local/ns/mesh/sa/reviews"
    denied = eng.trace("shop/front", "mesh/ratings", 9080)
    istio = denied.layer("istio")
    assert denied.verdict == "denied" and denied.deciding_layer is istio
    assert istio.isolated_by == ["AuthorizationPolicy/mesh/ratings-viewer"]
    assert istio.nearest and istio.nearest[0].ref == "AuthorizationPolicy/mesh/ratings-viewer"


def test_no_istio_layer_outside_the_mesh_or_for_udp():
    eng = mesh_engine()
    assert [layer.layer for layer in eng.trace("mesh/reviews", "shop/legacy", 80).layers] == ["egress", "ingress"]
    assert len(eng.trace("mesh/reviews", "mesh/ratings", 53, "UDP").layers) == 2


def test_strict_mtls_refuses_a_source_without_sidecar():
    eng = mesh_engine("""
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: mesh}
spec: {mtls: {mode: STRICT}}
""")
    result = eng.trace("shop/legacy", "mesh/reviews", 9080)
    assert result.verdict == "denied" and result.layer("istio").reason == "mtls-strict"
    assert eng.trace("mesh/ratings", "mesh/reviews", 9080).verdict == "allowed"


def test_istio_reads_the_port_protocol_from_the_service():
    eng = mesh_engine("""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: get-only, namespace: mesh}
spec:
  selector: {matchLabels: {app: reviews}}
  rules: [{to: [{operation: {methods: [GET]}}]}]
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: mesh}
spec: {selector: {app: reviews}, ports: [{name: tcp-raw, port: 7000}, {name: http-web, port: 9080}]}
""")
    tcp = eng.trace("mesh/ratings", "mesh/reviews", 7000)
    assert tcp.verdict == "denied"  # an ALLOW rule with HTTP-only fields is ignored on TCP
    assert "tcp" in tcp.layer("istio").mesh.http
    assert eng.trace("mesh/ratings", "mesh/reviews", 9080).verdict == "allowed"


def test_istio_layer_for_pods_the_state_knows_only_through_their_workload_or_hubble():
    eng = mesh_engine("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: details, namespace: mesh}
spec:
  template:
    metadata: {labels: {app: ratings}}
    spec: {serviceAccountName: details, containers: [{name: app}]}
""")
    reviews = eng.resolve("mesh/reviews")
    stand_in = eng.subject_for_endpoint(endpoint("mesh", "details-5f-abc", [], 77, [("Deployment", "details")]))
    assert stand_in.obj["kind"] == "Deployment"
    # the template's app=ratings puts it under ratings-viewer, which admits reviews only
    assert eng.trace(reviews, stand_in, 9080).verdict == "allowed"
    assert eng.trace("shop/front", stand_in, 9080).layer("istio").verdict == "denied"
    labels = ["k8s:app=ratings", "k8s:io.kubernetes.pod.namespace=mesh",
              "k8s:io.cilium.k8s.namespace.labels.istio-injection=enabled",
              "k8s:io.cilium.k8s.policy.serviceaccount=ratings"]
    from_hubble = eng.subject_for_endpoint(endpoint("mesh", "ratings-new", labels, 88))
    assert from_hubble.kind == "flow"
    result = eng.trace("shop/front", from_hubble, 9080)
    assert result.layer("istio") is not None and result.verdict == "denied"
