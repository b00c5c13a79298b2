"""The policy engine as of a time: a flow is judged by the cluster as it was when it happened.

The run's engine follows the current state; for a time before the latest change, `EngineAt.at` gives a what-if
view of it with every object changed since put back as it was (pods as they were, not rolled out). Views are
keyed by the timeline's position (how many changes had happened), so all the flows between two changes share
one view, and they live in the engine's memo, which empties whenever the engine moves.
"""

from __future__ import annotations

from hubbletui.cluster.timeline import Timeline
from hubbletui.policy.engine import PolicyEngine

OLDER_THAN_WINDOW = ("older than the cluster history kept (the timeline's window): judged against a later state "
                     "of the cluster")


class EngineAt:
    """`at(time_ns)`: the engine for the cluster as of that time; without a timeline, always the run's engine."""

    def __init__(self, engine: PolicyEngine, timeline: Timeline | None = None) -> None:
        self.engine = engine
        self.timeline = timeline

    def at(self, time_ns: int) -> PolicyEngine:
        """As of a flow's time (nanoseconds since the epoch; 0: unknown, so now)."""
        return self.at_time(time_ns / 1e9) if time_ns else self.engine

    def at_time(self, t: float) -> PolicyEngine:
        """As of `t` seconds since the epoch, a change at exactly `t` counted as applied."""
        timeline = self.timeline
        if timeline is None:
            return self.engine
        position = timeline.position(t)
        if position >= timeline.total:
            return self.engine
        engine = self.engine
        key = ("as-of", position)
        view = engine.memo.get("view", key)
        if view is None:
            reverted = timeline.reverted_at(t)
            view = engine.what_if([old for _, _, old in reverted if old is not None],
                                  [(kind, ns, name) for kind, (ns, name), old in reverted if old is None],
                                  rollout=False)
            engine.memo.put("view", key, view)
        return view

    def complete_at(self, time_ns: int) -> bool:
        """False when ``time_ns`` is older than the history kept: the view may miss changes since."""
        return self.timeline is None or not time_ns or self.timeline.state_at(time_ns / 1e9).complete
