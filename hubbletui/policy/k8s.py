"""Kubernetes NetworkPolicy -> compiled rules, the way Cilium translates it (pkg/k8s/network_policy.go).

- subject: podSelector over k8s labels, pinned to the policy's namespace;
- policyTypes default to Ingress, plus Egress when egress rules exist; a listed type without rules is
  default deny for that direction (one rule that admits nothing);
- an empty or absent `from`/`to` admits every peer, world included; a peer's podSelector alone means the
  policy's namespace, namespaceSelector keys become namespace-label keys (empty = any namespace), both
  together are ANDed; selector peers are limited to the local cluster; ipBlock is a CIDR (never a pod);
- ports: protocol defaults to TCP, no port means every port of that protocol, endPort is inclusive, a named
  port is resolved on the destination pod.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from hubbletui.flows.labels import NAMESPACE_LABEL, Requirement, Selector
from hubbletui.policy.labels import CLUSTER_LABEL, NAMESPACE_LABELS_PREFIX
from hubbletui.policy.ports import PortClause
from hubbletui.policy.rules import ALLOW, EGRESS, INGRESS, CompiledPolicy, Peer, PolicyKey, PortBlock, Rule
from hubbletui.policy.selectors import SelectorError, parse_label_selector

_CLUSTER = Requirement("k8s", CLUSTER_LABEL, "Exists")  # we model one cluster: "local" = has a cluster label


def compile_network_policy(obj: dict) -> CompiledPolicy:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    key = PolicyKey("NetworkPolicy", namespace, meta.get("name") or "")
    spec = obj.get("spec") or {}
    notes: list[str] = []
    try:
        subject = parse_label_selector(spec.get("podSelector") or {}, default_source="k8s").with_requirement(
            Requirement("k8s", NAMESPACE_LABEL, "In", (namespace,)), replace_key=True)
    except SelectorError as exc:
        return CompiledPolicy(key, (), (f"spec.podSelector: not understood, policy ignored ({exc})",), False, obj)
    types = spec.get("policyTypes")
    if not types:
        types = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
    rules: list[Rule] = []
    for field_name, type_name, direction, peer_field in (("ingress", "Ingress", INGRESS, "from"),
                                                          ("egress", "Egress", EGRESS, "to")):
        if type_name not in types:
            if spec.get(field_name):
                notes.append(f"spec.{field_name} is ignored: policyTypes does not list {type_name}")
            continue
        entries = spec.get(field_name) or []
        if not entries:
            rules.append(Rule(key, f"spec.policyTypes[{type_name}] (no {field_name} rules: deny all)",
                              direction, ALLOW, subject))
            continue
        for i, entry in enumerate(entries):
            path = f"spec.{field_name}[{i}]"
            try:
                rules.append(_rule(key, path, entry or {}, direction, peer_field, subject, namespace))
            except (SelectorError, ValueError, TypeError, AttributeError) as exc:
                notes.append(f"{path}: not understood, ignored ({exc})")
    return CompiledPolicy(key, tuple(rules), tuple(notes), False, obj)


def _rule(key: PolicyKey, path: str, entry: Mapping, direction: str, peer_field: str, subject: Selector,
          namespace: str) -> Rule:
    peers = [_peer(f"{peer_field}[{i}]", p or {}, namespace) for i, p in enumerate(entry.get(peer_field) or [])]
    clauses = tuple(_port_clause(p or {}) for p in entry.get("ports") or [])
    ports = (PortBlock(clauses),) if clauses else ()
    return Rule(key, path, direction, ALLOW, subject, tuple(peers), all_peers=not peers, ports=ports)


def _peer(path: str, peer: Mapping, namespace: str) -> Peer:
    if peer.get("ipBlock"):
        block = peer["ipBlock"]
        net = ipaddress.ip_network(str(block.get("cidr")), strict=False)
        holes = tuple(ipaddress.ip_network(str(e), strict=False) for e in block.get("except") or [])
        return Peer("cidr", f"{path}.ipBlock", cidr=net, excepts=holes)
    pod_sel = peer.get("podSelector")
    ns_sel = peer.get("namespaceSelector")
    if pod_sel is None and ns_sel is None:
        raise ValueError("a peer needs podSelector, namespaceSelector or ipBlock")
    reqs = list(parse_label_selector(pod_sel or {}, default_source="k8s").requirements)
    if ns_sel is None:
        reqs.append(Requirement("k8s", NAMESPACE_LABEL, "In", (namespace,)))
    else:
        ns_reqs = parse_label_selector(ns_sel, default_source="k8s", key_prefix=NAMESPACE_LABELS_PREFIX).requirements
        reqs.extend(ns_reqs)
        if not ns_reqs:
            reqs.append(Requirement("k8s", NAMESPACE_LABEL, "Exists"))
    reqs.append(_CLUSTER)
    return Peer("endpoints", path, (Selector(tuple(reqs)),))


def _port_clause(port: Mapping) -> PortClause:
    protocol = str(port.get("protocol") or "TCP").upper()
    raw = port.get("port")
    if raw is None or raw == "":
        return PortClause(0, 0, "", protocol)
    if isinstance(raw, int) or str(raw).isdigit():
        number = int(raw)
        return PortClause(number, int(port.get("endPort") or 0), "", protocol)
    return PortClause(0, 0, str(raw), protocol)
