"""Security-identity labels as Cilium computes them (the label set lives in `hubbletui.flows.labels`), and the
default label filter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from hubbletui.flows.labels import NAMESPACE_LABEL, LabelSet

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
