"""A synthetic cluster for policy benchmarks: by default 5,000 pods in 500 workloads across 50 namespaces, with
1,000 policies mixing NetworkPolicy, CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy.

    .venv/bin/python benchmarks/synthetic_cluster.py -o /tmp/synthetic    # write it as a snapshot folder

From code (the policy and suggest benchmarks): `objects()` returns the API objects, `state()` a ClusterState.
Deterministic for a given seed. The mix, per namespace (10 workloads of 10 pods each, tiers web/api/db/cache/
worker): a default-deny NetworkPolicy, NetworkPolicies admitting the tier in front of each workload on its named
port, CiliumNetworkPolicies admitting other namespaces by name or by namespace label, port ranges, entities,
an ingressDeny and an L7 rule; cluster-wide policies for DNS egress, monitoring and world denies.
"""

from __future__ import annotations

import argparse
import itertools
import random
import zlib
from pathlib import Path

import yaml

from hubbletui.cluster.model import ClusterState
from hubbletui.cluster.snapshot import add_object

TIERS = ("web", "api", "db", "cache", "worker")
FRONT_OF = {"api": "web", "db": "api", "cache": "api", "worker": "api", "web": None}


def objects(pods: int = 5000, workloads: int = 500, policies: int = 1000, namespaces: int = 50,
            seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    addresses = itertools.count()
    per_ns = max(1, workloads // namespaces)
    replicas = max(1, pods // workloads)
    out: list[dict] = [_namespace("kube-system", {"team": "platform"}),
                       *_deployment("kube-system", "coredns", {"k8s-app": "kube-dns"}, 2, "dns", 53, "UDP",
                                   addresses)]
    workload_names: list[tuple[str, str, str]] = []  # (ns, name, tier)
    for n in range(namespaces):
        ns = f"ns-{n:02d}"
        out.append(_namespace(ns, {"team": f"team-{n % 10}", "env": "prod" if n % 3 else "dev"}))
        for w in range(per_ns):
            tier = TIERS[w % len(TIERS)]
            name = f"{tier}-{w:02d}"
            workload_names.append((ns, name, tier))
            out.extend(_deployment(ns, name, {"app": name, "tier": tier}, replicas, "http", 8080 + w % 3, "TCP",
                                   addresses))
    out.extend(_policies(rng, workload_names, namespaces, policies))
    return out


def state(**kwargs) -> ClusterState:
    st = ClusterState(source="synthetic")
    for obj in objects(**kwargs):
        add_object(st, obj)
    return st


def _namespace(name: str, labels: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **labels}}}


def _pod_ip(n: int) -> str:
    return f"10.{100 + n // 65536 % 100}.{n // 256 % 256}.{n % 256}"


def _deployment(ns: str, name: str, labels: dict, replicas: int, port_name: str, port: int, proto: str,
                addresses: itertools.count) -> list:
    pod_hash = format(zlib.crc32(f"{ns}/{name}".encode()), "08x")
    containers = [{"name": "main", "image": f"example/{name}",
                   "ports": [{"name": port_name, "containerPort": port, "protocol": proto},
                             {"name": "metrics", "containerPort": 9090}]}]
    template = {"metadata": {"labels": labels}, "spec": {"serviceAccountName": name, "containers": containers}}
    rs_name = f"{name}-{pod_hash}"
    out = [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": template}},
           {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": rs_name, "namespace": ns,
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                                              "controller": True}]},
            "spec": {"template": {**template, "metadata": {"labels": {**labels, "pod-template-hash": pod_hash}}}}}]
    for i in range(replicas):
        out.append({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": f"{rs_name}-{i:05d}", "namespace": ns,
                                 "labels": {**labels, "pod-template-hash": pod_hash},
                                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                      "name": rs_name, "controller": True}]},
                    "spec": {"serviceAccountName": name, "containers": containers},
                    "status": {"phase": "Running", "podIP": _pod_ip(next(addresses))}})
    return out


def _np(ns: str, name: str, spec: dict) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def _cnp(ns: str | None, name: str, spec: dict) -> dict:
    if ns is None:
        return {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy",
                "metadata": {"name": name}, "spec": spec}
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def _policies(rng: random.Random, workloads: list[tuple[str, str, str]], namespaces: int, total: int) -> list:
    """Half NetworkPolicy, 40% CiliumNetworkPolicy, 10% clusterwide, cycling through the shapes below."""
    out: list[dict] = []
    n_np, n_cnp = total // 2, total * 2 // 5
    n_ccnp = total - n_np - n_cnp
    ns_names = sorted({ns for ns, _, _ in workloads})
    by_ns: dict[str, list[tuple[str, str]]] = {}
    for ns, name, tier in workloads:
        by_ns.setdefault(ns, []).append((name, tier))
    for ns in ns_names[:n_np]:
        out.append(_np(ns, "default-deny", {"podSelector": {}, "policyTypes": ["Ingress"]}))
    i = 0
    while len(out) < n_np:
        ns, name, tier = workloads[i % len(workloads)]
        front = FRONT_OF[tier]
        peer = {"podSelector": {"matchLabels": {"tier": front}}} if front else {"namespaceSelector": {}}
        out.append(_np(ns, f"allow-{name}-{i // len(workloads)}", {
            "podSelector": {"matchLabels": {"app": name}},
            "ingress": [{"from": [peer], "ports": [{"port": "http"}, {"port": 9090, "protocol": "TCP"}]}]}))
        i += 1
    shapes = [_cnp_cross_ns, _cnp_ns_label, _cnp_range, _cnp_entities, _cnp_deny, _cnp_l7, _cnp_egress]
    for j in range(n_cnp):
        ns, name, tier = workloads[(j * 7) % len(workloads)]
        out.append(shapes[j % len(shapes)](rng, ns, name, j, ns_names))
    ccnp_shapes = [_ccnp_dns, _ccnp_monitoring, _ccnp_world_deny]
    for k in range(n_ccnp):
        out.append(ccnp_shapes[k % len(ccnp_shapes)](k))
    return out


def _cnp_cross_ns(rng, ns, name, j, ns_names):
    other = rng.choice(ns_names)
    return _cnp(ns, f"cross-{j}", {"endpointSelector": {"matchLabels": {"app": name}}, "ingress": [{
        "fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": other, "tier": "api"}}],
        "toPorts": [{"ports": [{"port": "http", "protocol": "TCP"}]}]}]})


def _cnp_ns_label(rng, ns, name, j, ns_names):
    return _cnp(ns, f"team-{j}", {"endpointSelector": {"matchLabels": {"app": name}}, "ingress": [{
        "fromEndpoints": [{"matchLabels": {"io.cilium.k8s.namespace.labels.team": f"team-{rng.randrange(10)}"}}]}]})


def _cnp_range(rng, ns, name, j, ns_names):
    low = 8000 + rng.randrange(100)
    return _cnp(ns, f"range-{j}", {"endpointSelector": {"matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["api", "worker"]}]}, "ingress": [{
            "fromEndpoints": [{}], "toPorts": [{"ports": [{"port": str(low), "endPort": low + 50}]}]}]})


def _cnp_entities(rng, ns, name, j, ns_names):
    return _cnp(ns, f"entities-{j}", {"endpointSelector": {"matchLabels": {"app": name}}, "ingress": [
        {"fromEntities": ["cluster"], "toPorts": [{"ports": [{"port": "9090", "protocol": "TCP"}]}]},
        {"fromCIDRSet": [{"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}],
         "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}]})


def _cnp_deny(rng, ns, name, j, ns_names):
    return _cnp(ns, f"deny-{j}", {"endpointSelector": {"matchLabels": {"tier": "db"}}, "ingressDeny": [
        {"fromEndpoints": [{"matchLabels": {"tier": "web"}}]}]})


def _cnp_l7(rng, ns, name, j, ns_names):
    return _cnp(ns, f"l7-{j}", {"endpointSelector": {"matchLabels": {"app": name}}, "ingress": [{
        "fromEndpoints": [{"matchLabels": {"tier": "worker"}}],
        "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}],
                     "rules": {"http": [{"method": "GET", "path": "/api/.*"}]}}]}]})


def _cnp_egress(rng, ns, name, j, ns_names):
    return _cnp(ns, f"egress-{j}", {"endpointSelector": {"matchLabels": {"app": name}}, "egress": [
        {"toEndpoints": [{"matchLabels": {"tier": "db"}}], "toPorts": [{"ports": [{"port": "http"}]}]},
        {"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s-app": "kube-dns"}}],
         "toPorts": [{"ports": [{"port": "53", "protocol": "UDP"}]}]},
        {"toFQDNs": [{"matchPattern": "*.example.com"}]}]})


def _ccnp_dns(k):
    return _cnp(None, f"dns-{k}", {"endpointSelector": {"matchLabels": {"tier": "worker"}}, "egress": [
        {"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s-app": "kube-dns"}}],
         "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}]}]},
        {"toEndpoints": [{}]}]})


def _ccnp_monitoring(k):
    return _cnp(None, f"monitoring-{k}", {"endpointSelector": {}, "ingress": [
        {"fromEndpoints": [{"matchLabels": {"io.cilium.k8s.namespace.labels.team": "platform"}}],
         "toPorts": [{"ports": [{"port": "metrics"}]}]}], "enableDefaultDeny": {"ingress": False}})


def _ccnp_world_deny(k):
    return _cnp(None, f"no-ssh-{k}", {"endpointSelector": {}, "ingressDeny": [
        {"fromEntities": ["world"], "toPorts": [{"ports": [{"port": "22", "protocol": "TCP"}]}]}],
        "enableDefaultDeny": {"ingress": False}})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output-dir", required=True, type=Path)
    ap.add_argument("--pods", type=int, default=5000)
    ap.add_argument("--workloads", type=int, default=500)
    ap.add_argument("--policies", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    a.output_dir.mkdir(parents=True, exist_ok=True)
    objs = objects(a.pods, a.workloads, a.policies, seed=a.seed)
    by_kind: dict[str, list[dict]] = {}
    for obj in objs:
        by_kind.setdefault(obj["kind"], []).append(obj)
    for kind, items in by_kind.items():
        path = a.output_dir / f"{kind.lower()}s.yaml"
        path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}, sort_keys=False))
    print(f"wrote {len(objs)} objects to {a.output_dir}: "
          + ", ".join(f"{len(v)} {k}" for k, v in by_kind.items()))


if __name__ == "__main__":
    main()
