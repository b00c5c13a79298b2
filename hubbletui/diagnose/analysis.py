"""What the drop detail screen explains for one aggregated row: the group it is, and each layer's verdict.

No Textual here: `analyse` runs in a worker thread, on snapshots the UI thread took (`Evidence`), never on the
live store. Without a cluster (no engine), the result says so instead of guessing. The fixes for the group
come from `hubbletui.suggest.drill_in`, which calls this first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hubbletui.errors import HubbleTuiError
from hubbletui.flows.model import Flow
from hubbletui.diagnose import drop_reasons
from hubbletui.cluster.timeline import Timeline
from hubbletui.diagnose.attribution import attribute
from hubbletui.diagnose.explain import explain_group, refusal_group
from hubbletui.diagnose.groups import DropGroup, group_drops
from hubbletui.flows.store import WOULD_DROP, FlowStore, Refusal, Row, RowKey
from hubbletui.policy.as_of import EngineAt
from hubbletui.policy.engine import PolicyEngine
from hubbletui.policy.result import TraceResult

NO_CLUSTER = ("no cluster: explanations and fixes need the policies, give --cluster PATH (a snapshot) or --live "
              "(read the cluster through the Kubernetes API)")


@dataclass
class Evidence:
    """Copies the UI thread takes for a worker: the row's own flows still in the ring, and flows that show
    what works (the ring, plus one sample of every forwarded row, which reaches further back)."""

    flows: list[Flow]
    working: list[Flow]
    now_ns: int | None = None  # the newest flow's time: changes after it have not happened yet (a replay)

    @classmethod
    def take(cls, store: FlowStore, row: Row) -> Evidence:
        mine = store.flows_of(row.key.conn)
        if row.key.verdict in WOULD_DROP:
            mine = [f for f in mine if f.verdict == row.key.verdict and f.reason_name == row.key.reason]
        if not mine:
            mine = [row.sample]
        working = list(store.ring) + [r.sample for r in list(store.rows.values()) if not r.is_drop]
        return cls(mine, working, store.latest_ns or None)


@dataclass
class Analysis:
    key: RowKey
    headline: str  # one line: "... is denied at egress of database/fdb-exporter-...: ..."
    trace: TraceResult | None = None  # when the engine could trace it
    group: DropGroup | None = None  # the row as a group of drops (or of refused connections)
    reason_info: drop_reasons.DropReasonInfo | None = None  # what Hubble's drop reason means
    refusal: Refusal | None = None
    notes: list[str] = field(default_factory=list)  # what could not be done, and why

    @property
    def fixable(self) -> DropGroup | None:
        """The group a policy change could fix, if this row is one."""
        return self.group if self.group is not None and self.group.fixable else None


def analyse(row: Row, engine: PolicyEngine | None, evidence: Evidence, timeline: Timeline | None = None) -> Analysis:
    key = row.key
    out = Analysis(key=key, headline="", refusal=row.refusal)
    if key.verdict in WOULD_DROP and key.reason:
        out.reason_info = drop_reasons.describe(key.reason)
    if engine is None:
        out.headline = _plain_headline(row, out)
        out.notes.append(NO_CLUSTER)
        return out
    try:
        at = EngineAt(engine, timeline)
        now = evidence.now_ns / 1e9 if evidence.now_ns else None
        if row.refusal is not None:
            _refusal(row, out)
            if out.group is not None:
                _attribute(out.group, at, now, out)
        elif key.verdict in WOULD_DROP:
            _drop(at, evidence, out, now)
        else:
            _forwarded(row, engine, out)
    except HubbleTuiError as exc:
        out.notes.append(f"could not analyse this connection: {exc}")
    except Exception as exc:  # noqa: BLE001 - one odd flow must not take the screen down; say what failed
        out.notes.append(f"the policy engine failed on this connection: {type(exc).__name__}: {exc}")
    if not out.headline:
        out.headline = _plain_headline(row, out)
    return out


def _drop(at: EngineAt, evidence: Evidence, out: Analysis, now: float | None) -> None:
    """The row's drops, judged by the cluster as of their time when it has a history."""
    groups = group_drops(evidence.flows, at.engine, at.at if at.timeline is not None else None)
    group = explain_group(at.at(groups[0].sample.time_ns), groups[0])  # the biggest group: the engine may name
    _attribute(group, at, now, out)  # a side differently than the row does
    out.group, out.trace = group, group.trace
    out.headline = group.explanation
    out.notes += group.notes


def _attribute(group: DropGroup, at: EngineAt, now: float | None, out: Analysis) -> None:
    attribute(group, at, now)
    out.notes += [a for a in (group.started_after and group.started_after.started_after_text(),
                              group.resolved_by and group.resolved_by.resolved_by_text()) if a]


def _refusal(row: Row, out: Analysis) -> None:
    refusal = row.refusal
    out.headline = f"refused by {refusal.layer}: {refusal.summary}"
    if refusal.detail is not None:
        out.group = refusal_group(refusal.detail, row.sample, (row.src_ep, row.dst_ep))


def _forwarded(row: Row, engine: PolicyEngine, out: Analysis) -> None:
    port = row.key.port
    src, dst = engine.subject_for_endpoint(row.src_ep), engine.subject_for_endpoint(row.dst_ep)
    out.trace = engine.trace(src, dst, port.number, port.protocol or "TCP")
    out.headline = out.trace.explanation()


def _plain_headline(row: Row, out: Analysis) -> str:
    if row.refusal is not None:
        return f"refused by {row.refusal.layer}: {row.refusal.summary}"
    if out.reason_info is not None:
        return f"{out.reason_info.name}: {out.reason_info.summary}"
    return row.key.verdict.lower()
