"""Closing the loop: which cluster change a drop group's drops followed, and which change resolved them.

Kept apart from the diagnosis pass: it needs only a group's first/last drop time, the timeline, and a
predicate "does this state allow the group's traffic" that the caller builds from its policy engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hubbletui.cluster.timeline import StateView, Timeline, TimelineEntry, changed_fields

STARTED_AFTER_WINDOW_S = 30.0  # a change this long before the first drop may be its cause; beyond, a coincidence
BEFORE_S = 1e-6  # "just before a change": views count a change at exactly their time as applied


@dataclass(frozen=True)
class Attribution:
    change: TimelineEntry
    seconds: float  # drop time minus change time (started_after) or change time minus last drop (resolved_by)

    def started_after_text(self) -> str:
        return f"started {self.seconds:.0f} s after {self.change.describe()}"

    def resolved_by_text(self) -> str:
        return f"resolved {self.seconds:.0f} s after the last drop: {self.change.describe()}"

    def to_dict(self) -> dict:
        """As `explain -o json` reports it (`seconds`: how long after the change, or before it)."""
        change = self.change
        ns, name = change.key
        return {"time": change.time, "kind": change.kind, "namespace": ns or None, "name": name,
                "action": change.action, "fields": changed_fields(change.old, change.new),
                "seconds": round(self.seconds, 3), "text": change.describe()}


def started_after(timeline: Timeline, first_ns: int, window_s: float = STARTED_AFTER_WINDOW_S,
                  allows: Callable[[StateView], bool] | None = None,
                  related: Callable[[TimelineEntry], bool] | None = None) -> Attribution | None:
    """The change at most `window_s` before the group's first drop that its drops followed: with `allows`, the
    latest one after which the state stopped allowing the traffic; else the latest change to an object of the
    traffic itself (`related`: a pod that appeared); else the latest one that changed more than status (a pod's
    restart count is no cause)."""
    first = first_ns / 1e9
    candidates = [e for e in timeline.entries(since=first - window_s) if e.time <= first and _meaningful(e)]
    if not candidates:
        return None
    change = candidates[-1]
    causes = []
    if allows is not None:
        causes = [e for e in candidates if not allows(timeline.state_at(e.time))
                  and allows(timeline.state_at(e.time - BEFORE_S))]
    if not causes and related is not None:
        causes = [e for e in candidates if related(e)]
    change = causes[-1] if causes else change
    return Attribution(change, first - change.time)


def _meaningful(entry: TimelineEntry) -> bool:
    return entry.action != "modified" or bool(changed_fields(entry.old, entry.new))


def resolved_by(timeline: Timeline, last_ns: int, allows: Callable[[StateView], bool],
                now: float | None = None) -> Attribution | None:
    """The first change after the group's last drop after which the state allows its traffic, if the state
    as of `now` (the latest change by default) still allows it: a fix later undone is not a resolution. A pod
    that a rollout brought names the workload change that caused the rollout."""
    last = last_ns / 1e9
    later = [e for e in timeline.entries(since=last) if now is None or e.time <= now]
    if not later or not allows(timeline.state_at(later[-1].time)):
        return None
    for i, change in enumerate(later):
        if allows(timeline.state_at(change.time)):
            cause = _rollout_cause(later[:i], change)
            return Attribution(cause, cause.time - last)
    return None


WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")


def _rollout_cause(earlier: list[TimelineEntry], change: TimelineEntry) -> TimelineEntry:
    """For a pod created or changed by a rollout, the earlier change to its controllers' pod template (pod ->
    ReplicaSet -> Deployment, as their ownerReferences say); otherwise the change itself."""
    if change.kind != "Pod" or change.new is None:
        return change
    ns = change.key[0]
    owners = set(_owners(change.new, ns))
    for entry in reversed(earlier):  # a new ReplicaSet names its Deployment
        if (entry.kind, entry.key) in owners and entry.new is not None:
            owners.update(_owners(entry.new, ns))
    for entry in reversed(earlier):
        if (entry.kind, entry.key) in owners and entry.kind in WORKLOAD_KINDS \
                and "spec.template" in changed_fields(entry.old, entry.new):
            return entry
    return change


def _owners(obj: dict, namespace: str) -> list[tuple[str, tuple[str, str]]]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [(ref.get("kind"), (namespace, ref.get("name"))) for ref in refs if isinstance(ref, dict)]
