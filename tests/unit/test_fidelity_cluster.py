"""Where a real Cilium cluster differs from plain NetworkPolicy: hosts and nodes, Services and CIDR groups,
selector details. Each case cites the upstream source it follows (cilium/cilium at v1.19 unless said)."""

from __future__ import annotations

import pytest
import yaml

from hubbletui.cluster.model import ClusterState
from hubbletui.cluster.snapshot import add_object
from hubbletui.flows.model import Endpoint
from hubbletui.policy.engine import PolicyEngine

BASE = """
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {role: worker, kubernetes.io/hostname: n1}}
status: {addresses: [{type: InternalIP, address: 172.18.0.2}, {type: Hostname, address: n1}]}
---
apiVersion: v1
kind: Node
metadata: {name: n2, labels: {role: worker, kubernetes.io/hostname: n2}}
status: {addresses: [{type: InternalIP, address: 172.18.0.3}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: prod}
---
apiVersion: v1
kind: Namespace
metadata: {name: infra}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: prod, labels: {app: web}}
spec: {nodeName: n1, containers: [{name: web, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.0.1.10}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: prod, labels: {app: client}}
spec: {nodeName: n2, containers: [{name: c}]}
status: {podIP: 10.0.2.11}
---
apiVersion: v1
kind: Pod
metadata: {name: agent-n1, namespace: infra, labels: {app: agent}}
spec: {nodeName: n1, hostNetwork: true, containers: [{name: a, ports: [{name: metrics, containerPort: 9100}]}]}
status: {podIP: 172.18.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: agent-n2, namespace: infra, labels: {app: agent}}
spec: {nodeName: n2, hostNetwork: true, containers: [{name: a}]}
status: {podIP: 172.18.0.3}
"""


def engine(*docs: str, **options) -> PolicyEngine:
    state = ClusterState()
    for text in (BASE, *docs):
        for obj in yaml.safe_load_all(text):
            if obj:
                add_object(state, obj)
    return PolicyEngine(state, **options)


def cnp(name: str, spec: str, namespace: str = "prod") -> str:
    return yaml.safe_dump({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
                           "metadata": {"name": name, "namespace": namespace}, "spec": yaml.safe_load(spec)})


def ccnp(name: str, spec: str) -> str:
    return yaml.safe_dump({"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy",
                           "metadata": {"name": name}, "spec": yaml.safe_load(spec)})


def verdict(eng: PolicyEngine, src: str, dst: str, port: int, protocol: str = "TCP") -> str:
    return eng.trace(src, dst, port, protocol).verdict


WEB_FROM_CLIENT = cnp("web", """
endpointSelector: {matchLabels: {app: web}}
ingress: [{fromEndpoints: [{matchLabels: {app: client}}]}]
""")


# 2. hosts and nodes -----------------------------------------------------------------------------------
def test_a_policy_selecting_a_host_network_pod_is_not_enforced():
    """A hostNetwork pod has no endpoint of its own (Documentation/security/policy/language.rst, host policies:
    'pods running in the host network namespace' are the host endpoint); pod policies do not select it."""
    eng = engine(cnp("agent", """
endpointSelector: {matchLabels: {app: agent}}
ingress: [{fromEndpoints: [{matchLabels: {app: nothing}}]}]
""", namespace="infra"))
    result = eng.trace("prod/client", "infra/agent-n1", 9100)
    assert result.verdict == "allowed"
    assert result.layer("ingress").reason == "host-firewall-off"


def test_host_network_traffic_carries_host_on_its_node_and_remote_node_elsewhere():
    """pkg/identity reserved identities: host (1) for the local node, remote-node (6) for the others; traffic
    from the local host to a pod is always allowed (allow-localhost)."""
    eng = engine(WEB_FROM_CLIENT)
    same_node = eng.trace("infra/agent-n1", "prod/web", 8080)
    assert same_node.verdict == "allowed" and same_node.layer("ingress").reason == "localhost"
    other_node = eng.trace("infra/agent-n2", "prod/web", 8080)
    assert other_node.verdict == "denied"
    eng = engine(cnp("web", """
endpointSelector: {matchLabels: {app: web}}
ingress: [{fromEntities: [remote-node]}]
"""))
    assert verdict(eng, "infra/agent-n2", "prod/web", 8080) == "allowed"
    assert verdict(eng, "prod/client", "prod/web", 8080) == "denied"


def test_node_ips_are_nodes_never_world():
    """A node IP has the host / remote-node identity, never world, and CIDR rules do not select node
    addresses by default (Documentation/security/policy/language.rst, CIDR based: policy-cidr-match-mode)."""
    eng = engine(cnp("web", """
endpointSelector: {matchLabels: {app: web}}
ingress: [{fromCIDR: [0.0.0.0/0]}]
"""))
    node = eng.resolve("172.18.0.3")
    assert node.kind == "node" and node.labels.get("reserved", "world") is None
    assert verdict(eng, "172.18.0.3", "prod/web", 8080) == "denied"
    assert verdict(eng, "203.0.113.9", "prod/web", 8080) == "allowed"
    eng = engine(cnp("web", """
endpointSelector: {matchLabels: {app: web}}
ingress: [{fromEntities: [world]}]
"""))
    assert verdict(eng, "172.18.0.3", "prod/web", 8080) == "denied"


HOST_SSH_ONLY = ccnp("host-fw", """
nodeSelector: {matchLabels: {role: worker}}
ingress:
- fromEntities: [world]
  toPorts: [{ports: [{port: "22", protocol: TCP}]}]
""")


def test_host_policies_are_evaluated_for_traffic_to_hosts():
    """Host policies (nodeSelector, CCNP only) select host endpoints (Documentation/security/policy/language.rst
    'Host Policies'); with the host firewall on (here: implied by the host policy) they decide."""
    eng = engine(HOST_SSH_ONLY)
    assert verdict(eng, "203.0.113.9", "node/n1", 22) == "allowed"
    denied = eng.trace("203.0.113.9", "node/n1", 80)
    assert denied.verdict == "denied" and denied.layer("ingress").isolated_by == \
        ["CiliumClusterwideNetworkPolicy/host-fw"]
    # a hostNetwork pod is the host: the same policy applies to it
    assert verdict(eng, "203.0.113.9", "infra/agent-n1", 9100) == "denied"
    # and with the host firewall off, nothing applies to hosts
    assert verdict(engine(HOST_SSH_ONLY, host_firewall=False), "203.0.113.9", "node/n1", 80) == "allowed"


def test_host_policies_never_select_pods_and_endpoint_policies_never_select_hosts():
    """pkg/policy/rule.go matchesSubject: a rule's selector type (node or endpoint) must be the identity's."""
    eng = engine(HOST_SSH_ONLY, ccnp("all-pods", """
endpointSelector: {}
ingress: [{fromEntities: [cluster]}]
"""))
    assert verdict(eng, "203.0.113.9", "prod/web", 8080) == "denied"  # all-pods isolates pods
    assert verdict(eng, "203.0.113.9", "node/n1", 22) == "allowed"  # all-pods does not select the host
    assert "CiliumClusterwideNetworkPolicy/host-fw" not in eng.trace("203.0.113.9", "prod/web", 8080) \
        .layer("ingress").selected_by


def test_kube_apiserver_identity_carries_remote_node():
    """pkg/identity/numericidentity.go: ReservedIdentityKubeAPIServer's labels are reserved:kube-apiserver and
    reserved:remote-node, so a remote-node rule admits the API server."""
    eng = engine(cnp("client", """
endpointSelector: {matchLabels: {app: client}}
egress: [{toEntities: [remote-node]}]
"""))
    assert verdict(eng, "prod/client", "kube-apiserver", 6443) == "allowed"
    assert verdict(eng, "prod/client", "world", 443) == "denied"


# 3. services and groups -------------------------------------------------------------------------------
SERVICES = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: prod, labels: {tier: front}}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: legacy-db, namespace: infra}
spec: {ports: [{port: 5432}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: legacy-db-1, namespace: infra, labels: {kubernetes.io/service-name: legacy-db}}
addressType: IPv4
endpoints: [{addresses: [203.0.113.50], conditions: {ready: true}}, {addresses: [203.0.113.51],
             conditions: {ready: false}}]
ports: [{port: 5432}]
"""


def test_to_services_without_namespace_matches_every_namespace():
    """pkg/policy/k8s/service.go serviceRefMatches / serviceSelectorMatches: an empty namespace matches the
    Service in any namespace."""
    eng = engine(SERVICES, cnp("client", """
endpointSelector: {matchLabels: {app: client}}
egress: [{toServices: [{k8sService: {serviceName: legacy-db}}]}]
"""), cnp("client2", """
endpointSelector: {matchLabels: {app: web}}
egress: [{toServices: [{k8sServiceSelector: {selector: {matchLabels: {tier: front}}}}]}]
"""))
    assert verdict(eng, "prod/client", "203.0.113.50", 5432) == "allowed"
    assert verdict(eng, "prod/web", "prod/web", 8080) == "allowed"


def test_a_selector_less_service_resolves_through_its_endpoint_slices():
    """pkg/policy/k8s/service.go processRule: an external Service (no selector) becomes generated toCIDRSet
    entries of its endpoints' addresses (ready ones only)."""
    eng = engine(SERVICES, cnp("client", """
endpointSelector: {matchLabels: {app: client}}
egress: [{toServices: [{k8sService: {serviceName: legacy-db, namespace: infra}}]}]
"""))
    assert verdict(eng, "prod/client", "203.0.113.50", 5432) == "allowed"
    assert verdict(eng, "prod/client", "203.0.113.51", 5432) == "denied"
    assert verdict(eng, "prod/client", "203.0.113.99", 5432) == "denied"
    assert verdict(eng, "prod/client", "prod/web", 8080) == "denied"


CIDR_GROUPS = """
apiVersion: cilium.io/v2
kind: CiliumCIDRGroup
metadata: {name: partners, labels: {kind: partner}}
spec: {externalCIDRs: [198.51.100.0/24]}
"""


@pytest.mark.parametrize("peer", ["{cidrGroupRef: partners, except: [198.51.100.128/25]}",
                                  "{cidrGroupSelector: {matchLabels: {kind: partner}}, except: [198.51.100.128/25]}"])
def test_cidr_groups_are_read_and_evaluated(peer):
    """pkg/policy/k8s/cilium_cidr_group.go: a CIDRRule naming a CiliumCIDRGroup by name or labels stands for
    the group's externalCIDRs, with the rule's except holes."""
    eng = engine(CIDR_GROUPS, cnp("web", f"""
endpointSelector: {{matchLabels: {{app: web}}}}
ingress: [{{fromCIDRSet: [{peer}]}}]
"""))
    assert verdict(eng, "198.51.100.7", "prod/web", 8080) == "allowed"
    assert verdict(eng, "198.51.100.200", "prod/web", 8080) == "denied"
    assert verdict(eng, "192.0.2.1", "prod/web", 8080) == "denied"


def test_a_missing_cidr_group_admits_nothing_and_says_so():
    eng = engine(cnp("web", """
endpointSelector: {matchLabels: {app: web}}
ingress: [{fromCIDRSet: [{cidrGroupRef: nowhere}]}]
"""))
    result = eng.trace("198.51.100.7", "prod/web", 8080)
    assert result.verdict == "denied"
    assert any("CiliumCIDRGroup nowhere not found" in n for n in result.layer("ingress").notes)


# 4. selector details ----------------------------------------------------------------------------------
def test_an_explicitly_empty_peer_list_selects_nothing():
    """pkg/policy/api/ingress.go field docs: an empty (present) fromEndpoints selects nothing; only an absent
    L3 part with toPorts admits every peer."""
    eng = engine(cnp("web", """
endpointSelector: {matchLabels: {app: web}}
ingress: [{fromEndpoints: [], toPorts: [{ports: [{port: "8080", protocol: TCP}]}]}]
"""))
    assert verdict(eng, "prod/client", "prod/web", 8080) == "denied"
    eng = engine(cnp("web", """
endpointSelector: {matchLabels: {app: web}}
ingress: [{toPorts: [{ports: [{port: "8080", protocol: TCP}]}]}]
"""))
    assert verdict(eng, "prod/client", "prod/web", 8080) == "allowed"


def _remote_client(cluster: str) -> Endpoint:
    return Endpoint(namespace="prod", pod="client-x", ip="10.9.0.1", identity=30000, workloads=(), cluster=cluster,
                    labels=("k8s:app=client", "k8s:io.kubernetes.pod.namespace=prod",
                            f"k8s:io.cilium.k8s.policy.cluster={cluster}"))


def test_endpoint_selectors_are_limited_to_the_local_cluster():
    """pkg/k8s/apis/cilium.io/utils/utils.go addClusterFilterByDefault (policy-default-local-cluster, on in
    v1.19): a peer selector without a cluster key only selects endpoints of the local cluster."""
    eng = engine(WEB_FROM_CLIENT)
    web = eng.resolve("prod/web")
    remote = eng.subject_for_endpoint(_remote_client("other"))
    local = eng.subject_for_endpoint(_remote_client("default"))
    assert eng.trace(remote, web, 8080).verdict == "denied"
    assert eng.trace(local, web, 8080).verdict == "allowed"
    eng = engine(cnp("web", """
endpointSelector: {matchLabels: {app: web}}
ingress: [{fromEndpoints: [{matchLabels: {app: client, io.cilium.k8s.policy.cluster: other}}]}]
"""))
    assert eng.trace(eng.subject_for_endpoint(_remote_client("other")), eng.resolve("prod/web"), 8080).verdict \
        == "allowed"


def test_an_ambiguous_egress_named_port_resolves_to_nothing():
    """pkg/policy/types NamedPortMultiMap.GetNamedPort: a name two pods map to different numbers is
    ErrDuplicateNamedPorts: the egress rule gives no port."""
    other = """
apiVersion: v1
kind: Pod
metadata: {name: web2, namespace: prod, labels: {app: web2}}
spec: {nodeName: n2, containers: [{name: w, ports: [{name: http, containerPort: 9090}]}]}
status: {podIP: 10.0.2.20}
"""
    rule = cnp("client", """
endpointSelector: {matchLabels: {app: client}}
egress: [{toPorts: [{ports: [{port: http, protocol: TCP}]}]}]
""")
    assert verdict(engine(rule), "prod/client", "prod/web", 8080) == "allowed"
    eng = engine(other, rule)
    assert verdict(eng, "prod/client", "prod/web", 8080) == "denied"
    assert verdict(eng, "prod/client", "prod/web2", 9090) == "denied"
