"""Closing the loop for the TUI: which change each drop row followed and which change resolved it, as of the
replay's or the live stream's "now" (headless; the TUI runs `attribute_rows` in a worker).

A row is looked at again only when something could have changed the answer: a change after its last drop has
come into view, or it has not been looked at yet and a change shortly precedes its first drop. So rows still
dropping, the bulk of a flood, cost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from hubbletui.cluster.timeline import Timeline
from hubbletui.diagnose import drop_reasons
from hubbletui.diagnose.analysis import Evidence, analyse
from hubbletui.diagnose.loop import STARTED_AFTER_WINDOW_S, Attribution
from hubbletui.flows.store import WOULD_DROP, FlowStore, Row, RowKey
from hubbletui.policy.engine import PolicyEngine

MAX_ROWS_PER_PASS = 20  # each is one analysis (tens of ms); the rest wait for the next pass


@dataclass(frozen=True)
class RowLoop:
    started_after: Attribution | None
    resolved_by: Attribution | None


def last_drop_ns(row: Row) -> int:
    """A refused connection's row goes on after the refusals stop (the traffic is forwarded): its last refusal
    is what a fix must follow."""
    detail = row.refusal.detail if row.refusal is not None else None
    return detail.evidence.last_refused_ns if detail is not None else row.last_ns


def resolvable(row: Row) -> bool:
    """A row whose drops a policy (or mesh) change can end: the ones the loop tracker attributes."""
    return row.refusal is not None or (row.key.verdict in WOULD_DROP and drop_reasons.is_policy(row.key.reason or ""))


def _signature(row: Row, timeline: Timeline, now_s: float) -> tuple[int, int]:
    return last_drop_ns(row), timeline.position(now_s)


class LoopTracker:
    """The rows' attributions so far, and which rows need a fresh look."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.rows: dict[RowKey, RowLoop] = {}
        self._seen: dict[RowKey, tuple[int, int]] = {}

    def due(self, store: FlowStore) -> list[tuple[Row, Evidence]]:
        """Rows to attribute now, with the evidence the worker needs (taken here, on the UI thread)."""
        now_s = store.latest_ns / 1e9
        out = []
        for row in list(store.rows.values()):
            if not resolvable(row):
                continue
            signature = _signature(row, self.timeline, now_s)
            if self._seen.get(row.key) == signature:
                continue
            last = signature[0] / 1e9
            later = any(e.time <= now_s for e in self.timeline.entries(since=last))
            fresh = row.key not in self._seen and bool(
                self.timeline.entries(since=row.first_ns / 1e9 - STARTED_AFTER_WINDOW_S))
            self._seen[row.key] = signature
            if later or fresh or row.key in self.rows:
                out.append((row, Evidence.take(store, row)))
            if len(out) >= MAX_ROWS_PER_PASS:
                break
        return out

    def update(self, found: dict[RowKey, RowLoop]) -> None:
        self.rows.update(found)

    def resolved(self, key: RowKey) -> Attribution | None:
        entry = self.rows.get(key)
        return entry.resolved_by if entry is not None else None

    def touched_by(self, time: float, kind: str, key: tuple[str, str]) -> tuple[list[RowKey], list[RowKey]]:
        """(rows this change resolved, rows whose drops started after it)."""
        def same(a: Attribution | None) -> bool:
            return a is not None and (a.change.time, a.change.kind, a.change.key) == (time, kind, key)
        resolved = [k for k, v in self.rows.items() if same(v.resolved_by)]
        started = [k for k, v in self.rows.items() if same(v.started_after)]
        return resolved, started


def attribute_rows(due: list[tuple[Row, Evidence]], engine: PolicyEngine, timeline: Timeline) -> dict[RowKey, RowLoop]:
    """Each row analysed as the detail screen would (worker thread): its group's started_after/resolved_by."""
    out = {}
    for row, evidence in due:
        group = analyse(row, engine, evidence, timeline).group
        if group is not None:
            out[row.key] = RowLoop(group.started_after, group.resolved_by)
    return out
