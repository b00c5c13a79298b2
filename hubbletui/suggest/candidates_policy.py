"""Candidate fixes of kind new-policy: a least-privilege CiliumNetworkPolicy or NetworkPolicy for the side that
denied, selecting exactly the workload's pods by stable labels and naming exactly the peer, port and protocol.

A new policy with a section for a direction puts the pods it selects into default deny for that direction.
Where one of them was not isolated there before, the policy also carries what keeps its observed traffic
working, DNS to kube-dns first; when the observed traffic names a peer the policy cannot express, the candidate
is not offered, and the reason says so.
"""

from __future__ import annotations

import hashlib
import re

from hubbletui.flows.labels import NAMESPACE_LABEL
from hubbletui.policy.engine import PolicyEngine
from hubbletui.policy.labels import METADATA_NAME
from hubbletui.policy.rules import EGRESS, INGRESS
from hubbletui.policy.subjects import Subject
from hubbletui.suggest.model import NEW_POLICY, Change, ObjectRef
from hubbletui.suggest.observed import Seen, of_workload
from hubbletui.suggest.peers import cilium_peer, leaf_count, netpol_peer
from hubbletui.suggest.workloads import exact_selector, namespace_subjects, stable_labels

MANAGED_BY = {"app.kubernetes.io/managed-by": "hubbletui"}
DNS_NAMESPACE, DNS_LABELS = "kube-system", {"k8s-app": "kube-dns"}
_NAME_BAD = re.compile(r"[^a-z0-9-]+")
NAME_MAX = 63


def policy_name(src: Subject, dst: Subject, port: int, protocol: str, direction: str, namespace: str) -> str:
    """A stable DNS-1123 name: allow-<src>-to-<dst>-<port>-<proto>-<direction>."""
    def short(s: Subject) -> str:
        name = s.workload[1] if s.workload else (s.name or s.id)
        return name if s.namespace in ("", namespace) else f"{s.namespace}-{name}"

    where = protocol.lower() if protocol.startswith("ICMP") else f"{port}-{protocol.lower()}"
    raw = f"allow-{short(src)}-to-{short(dst)}-{where}-{direction}".lower()
    name = _NAME_BAD.sub("-", raw).strip("-")
    if len(name) > NAME_MAX:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        name = name[: NAME_MAX - 9].rstrip("-") + "-" + digest
    return name


def free_name(engine: PolicyEngine, kind: str, namespace: str, name: str) -> str:
    """``name``, or ``name-2``, ``name-3``... when the cluster already has a policy of that name."""
    taken = {k.name for k in engine.policies if k.kind == kind and k.namespace == namespace}
    taken |= {n for ns, n in engine.istio_objects.get(kind, {}) if ns == namespace}
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        suffix = f"-{n}"
        candidate = name[: NAME_MAX - len(suffix)] + suffix
    return candidate


def _port_part(port: int, protocol: str, netpol: bool) -> dict:
    if protocol.startswith("ICMP"):
        return {"icmps": [{"fields": [{"family": "IPv6" if protocol == "ICMPv6" else "IPv4", "type": port}]}]}
    if netpol:
        return {"ports": [{"port": port, "protocol": protocol}]}
    return {"toPorts": [{"ports": [{"port": str(port), "protocol": protocol}]}]}


def _dns_rule(netpol: bool) -> dict:
    if netpol:
        return {"to": [{"namespaceSelector": {"matchLabels": {METADATA_NAME: DNS_NAMESPACE}},
                        "podSelector": {"matchLabels": dict(DNS_LABELS)}}],
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
    return {"toEndpoints": [{"matchLabels": {f"k8s:{NAMESPACE_LABEL}": DNS_NAMESPACE, **DNS_LABELS}}],
            "toPorts": [{"ports": [{"port": "53", "protocol": "UDP"}, {"port": "53", "protocol": "TCP"}]}]}


def _rule(engine: PolicyEngine, peer: Subject, port: int, protocol: str, direction: str, namespace: str,
          netpol: bool) -> tuple[dict | None, tuple[str, ...]]:
    if netpol:
        if protocol.startswith("ICMP"):
            return None, ()
        spec = netpol_peer(engine, peer, namespace)
        if spec is None:
            return None, ()
        return {("from" if direction == INGRESS else "to"): [spec], **_port_part(port, protocol, True)}, ()
    cspec = cilium_peer(engine, peer, direction, namespace)
    if cspec is None:
        return None, ()
    return {cspec.cnp_field(direction): [cspec.value], **_port_part(port, protocol, False)}, cspec.notes


def _newly_isolated(engine: PolicyEngine, namespace: str, selector: dict[str, str], direction: str) -> list[Subject]:
    chosen = [s for s in namespace_subjects(engine, namespace)
              if all(stable_labels(s).get(k) == v for k, v in selector.items())]
    return [s for s in chosen if s.is_endpoint and not engine.is_isolated(s, direction)]


def _keep_rules(engine: PolicyEngine, isolated: list[Subject], direction: str, namespace: str, netpol: bool,
                observed: list[Seen]) -> tuple[list[dict], str]:
    """Rules that keep the observed traffic of pods newly put into default deny; a reason when some cannot."""
    rules: list[dict] = [_dns_rule(netpol)] if direction == EGRESS else []
    seen_keys = set()
    for subject in isolated:
        for seen in of_workload(observed, subject.workload_ref, direction):
            if direction not in seen.allowed:
                continue
            peer = seen.dst if direction == EGRESS else seen.src
            if direction == EGRESS and peer.namespace == DNS_NAMESPACE and seen.port == 53:
                continue  # the DNS rule covers it
            key = (peer.workload_ref, peer.ip, seen.port, seen.protocol)
            if key in seen_keys:
                continue
            seen_keys.add(key)
            rule, _ = _rule(engine, peer, seen.port, seen.protocol, direction, namespace, netpol)
            if rule is None:
                return [], (f"it would put {subject.workload_ref} into {direction} default deny and cut its "
                             f"observed traffic {seen.text}, which the policy cannot name")
            rules.append(rule)
    return rules, ""


def new_policy_options(engine: PolicyEngine, direction: str, enforcer: Subject, peer: Subject, port: int,
                       protocol: str, src: Subject, dst: Subject, netpol: bool,
                       observed: list[Seen]) -> tuple[list[tuple[Change, ...]], list[str]]:
    """``observed``: the working connections on the unchanged engine (`ObservedTraffic.baseline`)."""
    kind = "NetworkPolicy" if netpol else "CiliumNetworkPolicy"
    namespace = enforcer.namespace
    if not enforcer.is_endpoint or not namespace:
        return [], [f"a {kind} cannot select {enforcer.id}: it is not a pod"]
    selector, also = exact_selector(engine, enforcer)
    if not selector:
        return [], [f"no {kind} offered: {enforcer.workload_ref} has no identity labels to select it by"]
    rule, notes = _rule(engine, peer, port, protocol, direction, namespace, netpol)
    if rule is None:
        return [], [f"no {kind} offered: it cannot name {peer.id} on {protocol} {port}"]
    isolated = _newly_isolated(engine, namespace, selector, direction)
    keep, why_not = _keep_rules(engine, isolated, direction, namespace, netpol, observed) if isolated else ([], "")
    if why_not:
        return [], [f"no {kind} offered: {why_not}"]
    name = free_name(engine, kind, namespace, policy_name(src, dst, port, protocol, direction, namespace))
    where = protocol if protocol.startswith("ICMP") else f"{port}/{protocol}"
    what = f"{src.workload_ref} -> {dst.workload_ref} {where}"
    section = "ingress" if direction == INGRESS else "egress"
    if netpol:
        spec = {"podSelector": {"matchLabels": dict(selector)}, "policyTypes": [section.capitalize()],
                section: [rule, *keep]}
        obj = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)}, "spec": spec}
    else:
        spec = {"description": f"Allow {what} ({section} of {enforcer.workload_ref}); suggested by hubbletui.",
                "endpointSelector": {"matchLabels": dict(selector)}, section: [rule, *keep]}
        obj = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
               "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)}, "spec": spec}
    notes = list(notes)
    if also:
        notes.append(f"its selector also matches {', '.join(also)}: no label tells them apart")
    if isolated:
        names = ", ".join(s.workload_ref for s in isolated)
        notes.append(f"it puts {names} into {section} default deny; it also allows their observed {section} "
                     "traffic" + (", DNS to kube-dns first" if direction == EGRESS else ""))
    size = leaf_count({k: v for k, v in spec.items() if k != "description"})
    summary = f"new {kind} {namespace}/{name} allowing {what} at {section} of {enforcer.workload_ref}"
    ref = ObjectRef(kind, namespace, name)
    return [(Change(NEW_POLICY, ref, summary, (obj,), size, new_object=obj, notes=tuple(notes)),)], []
