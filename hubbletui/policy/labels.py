"""Security-identity labels as Cilium computes them, and the default label filter.

A label is kept as the string key ``source:key`` (``k8s:app``, ``reserved:world``) mapped to its value. Cilium
matches a selector key with the ``any`` source against a label of every source; see `LabelSet.values`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
NAMESPACE_LABELS_PREFIX = "io.cilium.k8s.namespace.labels."
SERVICE_ACCOUNT_LABEL = "io.cilium.k8s.policy.serviceaccount"
CLUSTER_LABEL = "io.cilium.k8s.policy.cluster"
DEFAULT_CLUSTER = "default"  # Cilium's cluster-name when none is configured
METADATA_NAME = "kubernetes.io/metadata.name"

# Cilium's default identity-label filter (pkg/labelsfilter/filter.go defaultLabelPrefixCfg; the v1.19 list in
# Documentation/operations/performance/scalability/identity-relevant-labels.rst): a key is dropped when an ignore
# pattern matches at its start, unless a longer include pattern matches too. topology.kubernetes.io/* is kept
# (no pattern matches it at the start), and of batch.kubernetes.io only two keys are dropped (job-name is kept).
_INCLUDE = [re.compile(p) for p in (re.escape(NAMESPACE_LABEL), re.escape(NAMESPACE_LABELS_PREFIX.rstrip(".")),
                                     r"app\.kubernetes\.io", re.escape(SERVICE_ACCOUNT_LABEL),
                                     re.escape(CLUSTER_LABEL))]
_IGNORE = [re.compile(p) for p in (
    r"io\.kubernetes", r"kubernetes\.io", r"statefulset\.kubernetes\.io/pod-name", r"apps\.kubernetes\.io/pod-index",
    r"batch\.kubernetes\.io/job-completion-index", r"batch\.kubernetes\.io/controller-uid", r".*beta\.kubernetes\.io",
    r"k8s\.io", r"pod-template-generation", r"pod-template-hash", r"controller-revision-hash", r"controller-uid",
    r"annotation.*", r"etcd_node")]


def _longest_match(patterns: list[re.Pattern], key: str) -> int:
    best = 0
    for pattern in patterns:
        m = pattern.match(key)
        if m and m.end() > best:
            best = m.end()
    return best


def _shortest_match(patterns: list[re.Pattern], key: str) -> int:
    lengths = [m.end() for m in (p.match(key) for p in patterns) if m]
    return min(lengths) if lengths else 0


def is_identity_label(key: str) -> bool:
    """Does Cilium's default filter keep this pod label key for the security identity?"""
    ignored = _shortest_match(_IGNORE, key)
    return ignored == 0 or _longest_match(_INCLUDE, key) > ignored


class LabelSet:
    """An immutable set of identity labels: ``{"k8s:app": "web", "reserved:world": ""}``."""

    __slots__ = ("full", "_by_key", "key")

    def __init__(self, full: Mapping[str, str]):
        self.full: dict[str, str] = dict(full)
        by_key: dict[str, list[str]] = {}
        for source_key, value in self.full.items():
            by_key.setdefault(source_key.partition(":")[2], []).append(value)
        self._by_key = by_key
        self.key = frozenset(self.full.items())  # the identity: equal label sets share every cached answer

    def values(self, source: str, key: str) -> list[str]:
        """Values of ``key`` from ``source``; source ``any`` looks at every source."""
        if source == "any":
            return self._by_key.get(key, [])
        value = self.full.get(f"{source}:{key}")
        return [] if value is None else [value]

    def get(self, source: str, key: str) -> str | None:
        found = self.values(source, key)
        return found[0] if found else None

    def reserved(self) -> list[str]:
        return sorted(k[9:] for k in self.full if k.startswith("reserved:"))

    def hubble_form(self) -> list[str]:
        """As Hubble prints them: ``k8s:app=web``, ``reserved:world``."""
        return sorted(k if v == "" and k.startswith("reserved:") else f"{k}={v}" for k, v in self.full.items())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelSet) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"LabelSet({self.hubble_form()})"


def parse_hubble_labels(labels: Iterable[str]) -> LabelSet:
    """["k8s:app=x", "reserved:world"] -> LabelSet; a label without a source is taken as k8s."""
    full = {}
    for label in labels:
        source, sep, rest = label.partition(":")
        if not sep:
            source, rest = "k8s", label
        key, _, value = rest.partition("=")
        full[f"{source}:{key}"] = value
    return LabelSet(full)


def pod_identity_labels(namespace: str, pod_labels: Mapping[str, str] | None,
                        namespace_labels: Mapping[str, str] | None, service_account: str | None,
                        cluster: str = DEFAULT_CLUSTER) -> LabelSet:
    """The identity labels Cilium gives a pod (pkg/k8s/apis/cilium.io/const.go and the label filter)."""
    full = {f"k8s:{k}": str(v) for k, v in (pod_labels or {}).items() if is_identity_label(k)}
    ns_labels = dict(namespace_labels or {})
    ns_labels.setdefault(METADATA_NAME, namespace)
    for k, v in ns_labels.items():
        full[f"k8s:{NAMESPACE_LABELS_PREFIX}{k}"] = str(v)
    full[f"k8s:{NAMESPACE_LABEL}"] = namespace
    full[f"k8s:{SERVICE_ACCOUNT_LABEL}"] = service_account or "default"
    full[f"k8s:{CLUSTER_LABEL}"] = cluster
    return LabelSet(full)


def reserved_labels(*names: str) -> LabelSet:
    return LabelSet({f"reserved:{n}": "" for n in names})
