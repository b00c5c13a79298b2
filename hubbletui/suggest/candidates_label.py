"""Candidate fixes of kind label-change: labels that make an existing allow rule match.

For the direction that denied, the engine's nearest rules say what each lacks. A rule whose every lack is a
label (on the pod, which the workload's pod template gives it, or on its namespace) is one label change
away. Only identity-relevant keys count: Cilium's label filter drops keys such as pod-template-hash, so a rule
that needs one can never match. A key the workload's own selector uses is left alone: changing it would
orphan the workload's pods.
"""

from __future__ import annotations

import copy

from hubbletui.policy.engine import PolicyEngine
from hubbletui.policy.labels import is_identity_label
from hubbletui.policy.records import Lack, NearRule
from hubbletui.policy.subjects import Subject
from hubbletui.suggest.model import LABEL_CHANGE, Change, ObjectRef, Patch
from hubbletui.suggest.workloads import TEMPLATE_PATHS, namespace_object, owner_of

NEAREST = 12  # rules looked at per direction


def _value(lack: Lack) -> str | None:
    if lack.op == "In" and lack.values:
        return str(lack.values[0])
    if lack.op == "Exists":
        return "true"
    return None  # NotIn / DoesNotExist: a label would have to go, not come


def _wanted(entry: NearRule, enforcer: Subject, peer: Subject) -> dict[tuple, dict[str, str]] | None:
    """{(kind, subject or namespace): {key: value}} that would make this rule match; None if labels cannot."""
    wanted: dict[tuple, dict[str, str]] = {}
    for lack in entry.lacks:
        if lack.side not in ("subject", "peer"):
            return None
        who = enforcer if lack.side == "subject" else peer
        value = _value(lack)
        if value is None or not who.namespace:
            return None
        if lack.what == "label":
            if not is_identity_label(lack.key) or not (lack.selector_key or "any:").startswith(("any:", "k8s:")):
                return None
            target = ("workload", who.workload_ref)
        elif lack.what == "namespace-label":
            target = ("namespace", who.namespace)
        else:
            return None
        labels = wanted.setdefault(target, {})
        if labels.get(lack.key, value) != value:
            return None
        labels[lack.key] = value
    return wanted or None


def label_options(engine: PolicyEngine, direction: str, enforcer: Subject, peer: Subject, dst: Subject,
                  port: int, protocol: str) -> tuple[list[tuple[Change, ...]], list[str]]:
    """Each option is the label changes (one per workload or namespace) that make one rule admit; and the
    reasons some rule one label away could not be used."""
    subjects = {enforcer.workload_ref: enforcer, peer.workload_ref: peer}
    options: dict[tuple, tuple[Change, ...]] = {}
    reasons: list[str] = []
    for entry in engine.nearest_rules(direction, enforcer, peer, dst, port, protocol, limit=NEAREST):
        wanted = _wanted(entry, enforcer, peer)
        if wanted is None:
            continue
        key = tuple(sorted((t, tuple(sorted(v.items()))) for t, v in wanted.items()))
        if key in options:
            continue
        because = entry.hit.where
        changes = []
        for (kind, name), labels in sorted(wanted.items()):
            if kind == "namespace":
                changes.append(namespace_change(engine, name, labels, because))
                continue
            change, reason = workload_change(engine, subjects[name], labels, because)
            if change is None:
                reasons.append(reason)
                break
            changes.append(change)
        else:
            options[key] = tuple(changes)
    return list(options.values()), list(dict.fromkeys(reasons))


def _label_text(labels: dict[str, str]) -> str:
    return ", ".join(f'{k}="{v}"' for k, v in labels.items())


def workload_change(engine: PolicyEngine, subject: Subject, labels: dict[str, str],
                    because: str) -> tuple[Change | None, str]:
    owner = owner_of(engine, subject)
    if owner is None:
        return None, (f"{subject.id} has no owning workload whose pod template could carry the label " \
                     f"({_label_text(labels)}) that {because} needs")
    ref = ObjectRef(owner.kind, owner.namespace, owner.name)
    if not owner.patchable:
        return None, (f"{ref.text}: its pod template cannot be patched to roll new labels out " \
                     f"({_label_text(labels)} for {because})")
    current = owner.template_labels() if owner.obj is not None else dict(
        ((owner.pods[0].get("metadata") or {}).get("labels") or {}) if owner.pods else {})
    locked = [k for k in labels if k in owner.selector_keys() and current.get(k) != labels[k]]
    if locked:
        return None, (f"{ref.text}: {', '.join(locked)} is part of its selector and cannot change (a rule wants " \
                     f"{_label_text({k: labels[k] for k in locked})})")
    body: dict = {"metadata": {"labels": dict(labels)}}
    for part in reversed(TEMPLATE_PATHS[owner.kind]):
        body = {part: body}
    changed = [k for k in labels if k in current]
    verb = "change" if changed and len(changed) == len(labels) else "add"
    summary = f"{verb} label {_label_text(labels)} on the pod template of {ref.text} (matches {because})"
    notes = () if owner.obj is not None else (f"{ref.text} is not in the cluster state: checked on its pods",)
    return Change(LABEL_CHANGE, ref, summary, owner.relabelled(labels), len(labels),
                  patch=Patch(ref, "strategic", body), notes=notes), ""


def namespace_change(engine: PolicyEngine, namespace: str, labels: dict[str, str], because: str) -> Change:
    obj = copy.deepcopy(namespace_object(engine, namespace))
    meta = obj.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
    ref = ObjectRef("Namespace", "", namespace)
    summary = f"add label {_label_text(labels)} to namespace {namespace} (matches {because})"
    return Change(LABEL_CHANGE, ref, summary, (obj,), len(labels),
                  patch=Patch(ref, "strategic", {"metadata": {"labels": dict(labels)}}))
