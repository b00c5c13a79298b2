"""What the cluster state lacks, so that no answer that depends on it is given with confidence.

The source: kinds the loader could not read (RBAC, an API error: the loaders write one `Kind: why` warning
each). A CRD that is not installed is not missing state: no such objects exist.
"""

from __future__ import annotations

from hubbletui.cluster.model import KINDS, WORKLOAD_KINDS, ClusterState

ISTIO_POLICY_KINDS = ("AuthorizationPolicy", "PeerAuthentication")
# kinds no verdict depends on (workload controllers only name pods; their pods are read themselves)
_NOT_DECISIVE = WORKLOAD_KINDS


def unread_kinds(state: ClusterState) -> dict[str, str]:
    """kind -> the loader's warning, for every kind that could not be read."""
    out: dict[str, str] = {}
    for warning in state.warnings:
        kind, sep, _ = warning.partition(":")
        # a CRD that is not installed means no such objects exist: nothing is missing then
        if sep and kind in KINDS and kind not in _NOT_DECISIVE and "not installed" not in warning:
            out.setdefault(kind, warning)
    return out


def relevant(incomplete: dict[str, str], istio: bool) -> list[str]:
    """The reasons that could change an answer; Istio's kinds only where the Istio layer took part."""
    return [why for kind, why in incomplete.items() if istio or kind not in ISTIO_POLICY_KINDS]
