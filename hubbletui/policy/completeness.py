"""What the cluster state lacks, so that no answer that depends on it is given with confidence.

Two sources: kinds the loader could not read (a CRD not installed, RBAC, an API error: the loaders write one
`Kind: why` warning each), and kinds a recording implies but the state lacks (Hubble reports policy drops, or
names a denying policy, that the state does not hold).
"""

from __future__ import annotations

from collections.abc import Iterable

from hubbletui.cluster.model import KINDS, ClusterState

CILIUM_POLICY_KINDS = ("NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy")
ISTIO_POLICY_KINDS = ("AuthorizationPolicy", "PeerAuthentication")
# kinds no verdict depends on (workload controllers only name pods; their pods are read themselves)
_NOT_DECISIVE = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob")
POLICY_DROPS = ("POLICY_DENIED", "POLICY_DENY")


def unread_kinds(state: ClusterState) -> dict[str, str]:
    """kind -> the loader's warning, for every kind that could not be read."""
    out: dict[str, str] = {}
    for warning in state.warnings:
        kind, sep, _ = warning.partition(":")
        # a CRD that is not installed means no such objects exist: nothing is missing then
        if sep and kind in KINDS and kind not in _NOT_DECISIVE and "not installed" not in warning:
            out.setdefault(kind, warning)
    return out


def flow_gaps(engine, flows: Iterable) -> dict[str, str]:
    """Kinds the flows imply and the engine's state lacks: policy drops with no policy at all, or a denying
    policy Hubble names that is not in the state."""
    have = {key.ref for key in engine.policies}
    any_policy = bool(engine.policies)
    gaps: dict[str, str] = {}
    for flow in flows:
        name = getattr(flow, "drop_reason_name", "") or ""
        if name in POLICY_DROPS and not any_policy:
            gaps.setdefault("CiliumNetworkPolicy", "Hubble reports policy drops (" + name + ") but the cluster "
                            "state holds no NetworkPolicy, CiliumNetworkPolicy or CCNP at all")
        for ref in tuple(getattr(flow, "egress_denied_by", ()) or ()) + \
                tuple(getattr(flow, "ingress_denied_by", ()) or ()):
            text = getattr(ref, "ref", "") or ""
            kind = getattr(ref, "kind", "") or text.split("/")[0]
            if text and text not in have and kind in CILIUM_POLICY_KINDS:
                gaps.setdefault(kind, f"Hubble names {text} as denying, and the cluster state does not hold it")
    return gaps


def relevant(incomplete: dict[str, str], istio: bool) -> list[str]:
    """The reasons that could change an answer; Istio's kinds only where the Istio layer took part."""
    return [why for kind, why in incomplete.items() if istio or kind not in ISTIO_POLICY_KINDS]
