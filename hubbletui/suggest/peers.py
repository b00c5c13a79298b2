"""How a fix names the other side of a connection in a rule: the least that admits exactly that peer.

A pod: its workload's exact selector (with its namespace when the policy lives elsewhere, or is clusterwide).
An address outside the cluster: that address alone (/32, /128). A reserved identity: its entity (CNP only;
a NetworkPolicy cannot name the host or the API server). None when the rule language cannot say it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from hubbletui.flows.labels import NAMESPACE_LABEL
from hubbletui.policy.engine import PolicyEngine
from hubbletui.policy.labels import METADATA_NAME
from hubbletui.policy.rules import INGRESS
from hubbletui.policy.subjects import Subject
from hubbletui.suggest.workloads import exact_selector

_ENTITIES = ("host", "remote-node", "kube-apiserver", "ingress", "health", "init", "unmanaged")


@dataclass(frozen=True)
class PeerSpec:
    field: str  # the CNP rule field suffix: Endpoints | Entities | CIDR | FQDNs
    value: object  # the list item to put in it
    notes: tuple[str, ...] = ()

    def cnp_field(self, direction: str) -> str:
        return ("from" if direction == INGRESS else "to") + self.field


def _cidr(ip: str) -> str:
    addr = ipaddress.ip_address(ip)
    return f"{addr}/{32 if addr.version == 4 else 128}"


def cilium_peer(engine: PolicyEngine, peer: Subject, direction: str, policy_namespace: str) -> PeerSpec | None:
    """``policy_namespace`` is "" for a clusterwide policy."""
    if peer.is_endpoint and peer.namespace:
        labels, also = exact_selector(engine, peer)
        selector = dict(labels)
        if peer.namespace != policy_namespace:
            selector[f"k8s:{NAMESPACE_LABEL}"] = peer.namespace
        notes = (f"the selector for {peer.workload_ref} also matches {', '.join(also)}",) if also else ()
        return PeerSpec("Endpoints", {"matchLabels": selector}, notes)
    if peer.kind == "fqdn" and peer.dns_names and direction != INGRESS:
        return PeerSpec("FQDNs", {"matchName": peer.dns_names[0]})
    if peer.ip and peer.cidr_matchable:
        return PeerSpec("CIDR", _cidr(peer.ip))
    name = peer.identity_name
    if peer.is_world:
        return PeerSpec("Entities", "world")
    if name in _ENTITIES:
        return PeerSpec("Entities", name)
    return None


def netpol_peer(engine: PolicyEngine, peer: Subject, policy_namespace: str) -> dict | None:
    if peer.is_endpoint and peer.namespace:
        labels, _ = exact_selector(engine, peer)
        out: dict = {"podSelector": {"matchLabels": dict(labels)}}
        if peer.namespace != policy_namespace:
            out["namespaceSelector"] = {"matchLabels": {METADATA_NAME: peer.namespace}}
        return out
    if peer.ip and peer.cidr_matchable:
        return {"ipBlock": {"cidr": _cidr(peer.ip)}}
    return None


def leaf_count(value: object) -> int:
    """How many scalar values a piece of YAML holds: the measure of "the smallest change"."""
    if isinstance(value, dict):
        return sum(leaf_count(v) for v in value.values()) or 1
    if isinstance(value, list):
        return sum(leaf_count(v) for v in value) or 1
    return 1
