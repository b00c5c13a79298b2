"""Closing the loop: which cluster change a drop group's drops followed, and which change resolved them.

Kept apart from the diagnosis pass: it needs only a group's first/last drop time, the timeline, and a
predicate "does this state allow the group's traffic" that the caller builds from its policy engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hubbletui.cluster.timeline import StateView, Timeline, TimelineEntry

STARTED_AFTER_WINDOW_S = 30.0  # a change this long before the first drop may be its cause; beyond, a coincidence


@dataclass(frozen=True)
class Attribution:
    change: TimelineEntry
    seconds: float  # drop time minus change time (started_after) or change time minus last drop (resolved_by)

    def started_after_text(self) -> str:
        return f"started {self.seconds:.0f} s after {self.change.describe()}"

    def resolved_by_text(self) -> str:
        return f"resolved {self.seconds:.0f} s after the last drop: {self.change.describe()}"


def started_after(timeline: Timeline, first_ns: int,
                  window_s: float = STARTED_AFTER_WINDOW_S) -> Attribution | None:
    """The latest change at most `window_s` before the group's first drop."""
    first = first_ns / 1e9
    candidates = [e for e in timeline.entries(since=first - window_s) if e.time <= first]
    if not candidates:
        return None
    change = candidates[-1]
    return Attribution(change, first - change.time)


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
