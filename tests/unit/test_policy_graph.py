"""The networkx policy graph: its nodes and edges, its queries, and following changes."""

from __future__ import annotations

import yaml

from hubbletui.cluster.model import ClusterState
from hubbletui.cluster.snapshot import add_object
from hubbletui.policy.engine import PolicyEngine
from hubbletui.policy.graph import PolicyGraph, rule_node, subject_node
from hubbletui.policy.ports import PortSet

CLUSTER = """
apiVersion: v1
kind: Namespace
metadata: {name: db}
---
apiVersion: v1
kind: Namespace
metadata: {name: app}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: fdb, namespace: db}
spec:
  template:
    metadata: {labels: {app: fdb}}
    spec: {containers: [{name: c, ports: [{name: fdb, containerPort: 4500}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: exporter, namespace: db}
spec: {template: {metadata: {labels: {app: exporter}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: app}
spec: {template: {metadata: {labels: {app: api, fdb-client: "true"}}}}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: fdb-clients, namespace: db}
spec:
  endpointSelector: {matchLabels: {app: fdb}}
  ingress:
  - fromEndpoints:
    - matchLabels: {fdb-client: "true", k8s:io.kubernetes.pod.namespace: app}
    - matchLabels: {fdb-client: "true"}
    toPorts: [{ports: [{port: fdb, protocol: TCP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: exporter-egress, namespace: db}
spec:
  endpointSelector: {matchLabels: {app: exporter}}
  egress:
  - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]
    toPorts: [{ports: [{port: "53", protocol: UDP}]}]
"""


def build(follow: bool = False) -> tuple[ClusterState, PolicyEngine, PolicyGraph]:
    state = ClusterState()
    for obj in yaml.safe_load_all(CLUSTER):
        add_object(state, obj)
    engine = PolicyEngine(state, follow=follow)
    return state, engine, PolicyGraph(engine, follow=follow)


def test_nodes_and_edges():
    _, engine, graph = build()
    g = graph.g
    fdb = engine.resolve("db/fdb")
    rule = engine.policies[next(k for k in engine.policies if k.name == "fdb-clients")].rules[0]
    assert g.nodes[subject_node(fdb)]["kind"] == "subject"
    assert g.has_edge(("namespace", "db"), subject_node(fdb))
    assert g.has_edge(("policy", "CiliumNetworkPolicy/db/fdb-clients"), rule_node(rule))
    selects = g.get_edge_data(rule_node(rule), subject_node(fdb))
    assert [d["rel"] for d in selects.values()] == ["selects"]
    allows = g.get_edge_data(rule_node(rule), subject_node(engine.resolve("app/api")))
    assert [(d["rel"], d["direction"], d["ports"]) for d in allows.values()] == [("allows", "ingress", "fdb/TCP")]
    assert graph.stats()["nodes.subject"] == 3 + 4  # three workloads and the reference entities


def test_what_isolates_and_what_may_reach():
    _, _, graph = build()
    assert graph.what_isolates("db/fdb", "ingress") == ["CiliumNetworkPolicy/db/fdb-clients"]
    assert graph.what_isolates("db/fdb", "egress") == []
    assert graph.what_isolates("db/exporter", "egress") == ["CiliumNetworkPolicy/db/exporter-egress"]
    reach = {s.workload_ref: ports for s, ports in graph.what_may_reach("db/fdb")}
    assert reach == {"app/api": PortSet({"TCP": [(4500, 4500)]})}
    # exporter lacks fdb-client=true, and its egress only reaches kube-dns anyway
    reached = graph.what_may_be_reached_from("db/exporter")
    assert reached == []


def test_what_may_reach_an_open_workload_is_everyone():
    _, _, graph = build()
    sources = {s.workload_ref for s, _ in graph.what_may_reach("db/exporter")}
    assert sources == {"app/api", "db/fdb", "world", "host", "remote-node", "kube-apiserver"}


def test_nearest_rule_for_the_exporter():
    _, _, graph = build()
    nearest = graph.nearest_rules("db/exporter", "db/fdb", 4500)
    # egress at the exporter denies first: its only rule lacks the peer and the port
    assert nearest[0].ref == "CiliumNetworkPolicy/db/exporter-egress"
    assert graph.nearest_rules("app/api", "db/fdb", 4500) == []  # allowed


def test_nearest_ingress_rule_names_the_missing_label():
    state, engine, _ = build()
    state.upsert({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
                  "metadata": {"name": "exporter-egress", "namespace": "db"},
                  "spec": {"endpointSelector": {"matchLabels": {"app": "exporter"}},
                           "egress": [{"toEntities": ["all"]}]}})
    graph = PolicyGraph(PolicyEngine(state))
    nearest = graph.nearest_rules("db/exporter", "db/fdb", 4500)
    assert nearest[0].ref == "CiliumNetworkPolicy/db/fdb-clients"
    assert [lack.text for lack in nearest[0].lacks] == ["label fdb-client=true"]


def test_graph_follows_engine_changes():
    state, engine, graph = build(follow=True)
    before = graph.g.number_of_edges()
    api = state.get("Deployment", "app", "api")
    state.upsert({**api, "spec": {"template": {"metadata": {"labels": {"app": "api"}}}}})
    assert graph.what_may_reach("db/fdb") == []
    state.delete("CiliumNetworkPolicy", ("db", "fdb-clients"))
    assert graph.what_isolates("db/fdb") == []
    assert ("policy", "CiliumNetworkPolicy/db/fdb-clients") not in graph.g
    state.upsert(api)
    state.upsert(next(o for o in yaml.safe_load_all(CLUSTER) if o["metadata"]["name"] == "fdb-clients"))
    assert graph.g.number_of_edges() == before
    assert {s.workload_ref for s, _ in graph.what_may_reach("db/fdb")} == {"app/api"}
