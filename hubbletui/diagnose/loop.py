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
                  allows: Callable[[StateView], bool] | None = None) -> Attribution | None:
    """The change at most `window_s` before the group's first drop that its drops followed: with `allows`, the
    latest one after which the state stopped allowing the traffic; otherwise (or when none did) the latest one
    that changed more than status (a pod's restart count is no cause)."""
    first = first_ns / 1e9
    candidates = [e for e in timeline.entries(since=first - window_s) if e.time <= first and _meaningful(e)]
    if not candidates:
        return None
    change = candidates[-1]
    if allows is not None:
        causes = [e for e in candidates if not allows(timeline.state_at(e.time))
                  and allows(timeline.state_at(e.time - BEFORE_S))]
        change = causes[-1] if causes else change
    return Attribution(change, first - change.time)


def _meaningful(entry: TimelineEntry) -> bool:
    return entry.action != "modified" or bool(changed_fields(entry.old, entry.new))


def resolved_by(timeline: Timeline, last_ns: int, allows: Callable[[StateView], bool]) -> Attribution | None:
    """The first change after the group's last drop after which the state allows its traffic, if the state
    now still allows it (a fix later undone is not a resolution)."""
    last = last_ns / 1e9
    later = timeline.entries(since=last)
    if not later or not allows(timeline.state_at(later[-1].time)):
        return None
    for change in later:
        if allows(timeline.state_at(change.time)):
            return Attribution(change, change.time - last)
    return None
