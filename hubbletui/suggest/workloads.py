"""What a fix needs to know about the pods it touches: the workload that owns them (the object a label patch
goes to), their stable labels (identity-relevant, never pod-template-hash and friends), and the smallest label
set that selects exactly them.

Built on the engine's public inventory; see the report for the engine API this would rather call.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from hubbletui.flows.labels import NAMESPACE_LABEL
from hubbletui.policy.engine import PolicyEngine
from hubbletui.policy.inventory import pod_template
from hubbletui.policy.labels import METADATA_NAME, is_identity_label
from hubbletui.policy.subjects import Subject

# workload kind -> where its pod template lives; the kinds whose template a patch can change and a rollout then
# carries to every pod (a Job's template is immutable, a bare ReplicaSet does not roll its pods)
TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
_CILIUM_ADDED = "io.cilium.k8s."  # namespace labels, service account, cluster: Cilium adds them, pods cannot


@dataclass(frozen=True)
class Owner:
    """The workload behind a subject, with the pods of it the cluster state holds."""

    kind: str
    namespace: str
    name: str
    obj: dict | None  # None when the state holds its pods but not the workload itself
    pods: tuple[dict, ...]

    @property
    def patchable(self) -> bool:
        return self.kind in TEMPLATE_PATHS

    def selector_keys(self) -> set[str]:
        """Label keys of the workload's own selector: changing their values would orphan its pods."""
        sel = ((self.obj or {}).get("spec") or {}).get("selector") or {}
        keys = set((sel.get("matchLabels") or {}).keys())
        keys |= {str(e.get("key")) for e in sel.get("matchExpressions") or [] if isinstance(e, dict)}
        return keys

    def template_labels(self) -> dict[str, str]:
        template = pod_template(self.kind, self.obj) if self.obj else None
        return dict(((template or {}).get("metadata") or {}).get("labels") or {})

    def relabelled(self, labels: dict[str, str]) -> tuple[dict, ...]:
        """The workload and its pods with ``labels`` set on the pod template and on every pod (a rollout)."""
        out = []
        if self.obj is not None:
            obj = copy.deepcopy(self.obj)
            node = obj
            for part in TEMPLATE_PATHS.get(self.kind, ("spec", "template")):
                node = node.setdefault(part, {})
            meta = node.setdefault("metadata", {})
            meta["labels"] = {**(meta.get("labels") or {}), **labels}
            out.append(obj)
        for pod in self.pods:
            pod = copy.deepcopy(pod)
            meta = pod.setdefault("metadata", {})
            meta["labels"] = {**(meta.get("labels") or {}), **labels}
            out.append(pod)
        return tuple(out)


def owner_of(engine: PolicyEngine, subject: Subject) -> Owner | None:
    """The workload that owns ``subject`` (a pod or a workload's stand-in), None for bare pods and non-pods."""
    if not subject.workload or not subject.namespace:
        return None
    kind, name = subject.workload
    members = engine.inventory.namespaces.get(subject.namespace)
    if members is None:
        return None
    obj = members.raw.get(kind, {}).get(name)
    raw_pods = members.raw.get("Pod", {})
    pods = tuple(raw_pods[p] for p in members.members.get((kind, name), ()) if p in raw_pods)
    return Owner(kind, subject.namespace, name, obj, pods)


def namespace_object(engine: PolicyEngine, namespace: str) -> dict:
    """The Namespace as the state has it, or the one the API server would have made."""
    members = engine.inventory.namespaces.get(namespace)
    if members is not None and members.obj is not None:
        return members.obj
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {METADATA_NAME: namespace}}}


def stable_labels(subject: Subject) -> dict[str, str]:
    """The pod labels that make up the subject's identity: what Cilium's label filter keeps, without the
    labels Cilium adds itself (namespace, namespace labels, service account, cluster)."""
    out = {}
    for source_key, value in subject.labels.full.items():
        source, _, key = source_key.partition(":")
        if source == "k8s" and key != NAMESPACE_LABEL and not key.startswith(_CILIUM_ADDED) \
                and is_identity_label(key):
            out[key] = value
    return dict(sorted(out.items()))


def namespace_subjects(engine: PolicyEngine, namespace: str) -> list[Subject]:
    members = engine.inventory.namespaces.get(namespace)
    if members is None:
        return []
    return list(members.pods.values()) + list(members.templates.values())


def _matches(labels: dict[str, str], selector: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def exact_selector(engine: PolicyEngine, subject: Subject) -> tuple[dict[str, str], list[str]]:
    """matchLabels selecting exactly the subject's workload in its namespace, and what else it selects when no
    label set can tell them apart. Prefers the workload's own selector (the labels it is known by), then
    every stable label."""
    labels = stable_labels(subject)
    owner = owner_of(engine, subject)
    others = [s for s in namespace_subjects(engine, subject.namespace) if s.workload_ref != subject.workload_ref]
    options = []
    if owner is not None and owner.obj is not None:
        own = ((owner.obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        own = {str(k): str(v) for k, v in own.items() if labels.get(str(k)) == str(v)}
        if own:
            options.append(dict(sorted(own.items())))
    options.append(labels)
    for selector in options:
        if not any(_matches(stable_labels(o), selector) for o in others):
            return selector, []
    also = sorted({o.workload_ref for o in others if _matches(stable_labels(o), labels)})
    return labels, also
