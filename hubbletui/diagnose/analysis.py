"""What the drop detail screen shows for one aggregated row: the explanation per layer, and the checked fixes.

The one place the TUI calls the policy and suggest layers, so the screens stay the same while those grow. No
Textual here: `analyse` runs in a worker thread, on snapshots the UI thread took (`Evidence`), never on the
live store. Without a cluster (no engine), the result says so instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hubbletui.errors import HubbleTuiError
from hubbletui.flows.model import Flow
from hubbletui.flows.store import FlowStore, Refusal, Row, RowKey
from hubbletui.diagnose import drop_reasons

NO_CLUSTER = ("no cluster: explanations and fixes need the policies, give --cluster PATH (a snapshot) or --live "
              "(read the cluster through the Kubernetes API)")
FORMATS = ("cilium", "k8s", "istio")  # what `f` cycles through
MAX_PAIRS = 16


@dataclass
class Evidence:
    """Copies the UI thread takes for a worker: the row's own flows still in the ring, and flows that show
    what works (the ring, plus one sample of every forwarded row, which reaches further back)."""

    flows: list[Flow]
    working: list[Flow]

    @classmethod
    def take(cls, store: FlowStore, row: Row) -> Evidence:
        mine = store.flows_of(row.key.conn)
        if row.key.verdict == "DROPPED":
            mine = [f for f in mine if f.is_drop and (f.drop_reason_name or "") == row.key.reason]
        if not mine:
            mine = [row.sample]
        working = list(store.ring) + [r.sample for r in list(store.rows.values()) if not r.is_drop]
        return cls(mine, working)


@dataclass
class Analysis:
    key: RowKey
    headline: str  # one line: "... is denied at egress of database/fdb-exporter-...: ..."
    fmt: str = ""
    trace: Any = None  # hubbletui.policy.result.TraceResult when the engine could trace it
    group: Any = None  # hubbletui.diagnose.explain.DropGroup for Cilium drops
    fixes: Any = None  # hubbletui.suggest.model.GroupFixes when fixes were looked for
    reason_info: drop_reasons.DropReasonInfo | None = None  # what Hubble's drop reason means
    refusal: Refusal | None = None
    notes: list[str] = field(default_factory=list)  # what could not be done, and why

    @property
    def suggestions(self) -> list:
        return list(self.fixes.suggestions) if self.fixes is not None else []


def analyse(row: Row, engine: Any, evidence: Evidence, fmt: str | None = None) -> Analysis:
    key = row.key
    out = Analysis(key=key, headline="", refusal=row.refusal)
    if key.verdict == "DROPPED" and key.reason:
        out.reason_info = drop_reasons.describe(key.reason)
    if engine is None:
        out.headline = _plain_headline(row, out)
        out.notes.append(NO_CLUSTER)
        return out
    from hubbletui.suggest.fixes import default_format

    out.fmt = fmt or default_format(engine)
    try:
        if row.refusal is not None:
            _refusal(row, engine, evidence, out)
        elif key.verdict == "DROPPED":
            _drop(row, engine, evidence, out)
        else:
            _forwarded(row, engine, out)
    except HubbleTuiError as exc:
        out.notes.append(f"could not analyse this connection: {exc}")
    except Exception as exc:  # noqa: BLE001 - one odd flow must not take the screen down; say what failed
        out.notes.append(f"the policy engine failed on this connection: {type(exc).__name__}: {exc}")
    if not out.headline:
        out.headline = _plain_headline(row, out)
    return out


def _drop(row: Row, engine: Any, evidence: Evidence, out: Analysis) -> None:
    from hubbletui.diagnose.explain import explain_group, group_drops
    from hubbletui.diagnose.groups import case_of_group

    groups = group_drops(evidence.flows, engine)
    group = explain_group(engine, groups[0])  # the engine may name a side differently: the biggest group
    out.group, out.trace = group, group.trace
    out.headline = group.explanation
    out.notes += group.notes
    if not drop_reasons.is_policy(row.key.reason or "UNKNOWN") or row.sample.is_reply:
        return  # not a rule's doing: explain_group said what it means, and no policy change fixes it
    pairs = tuple(dict.fromkeys((f.source, f.destination) for f in evidence.flows))[:MAX_PAIRS]
    case = case_of_group(group, pairs)
    _suggest(engine, case, evidence, out)


def _refusal(row: Row, engine: Any, evidence: Evidence, out: Analysis) -> None:
    from hubbletui.diagnose.groups import case_of_refusal

    refusal = row.refusal
    finding = refusal.detail if refusal is not None else None
    out.headline = f"refused by {refusal.layer}: {refusal.summary}"
    if finding is None:
        return
    case = case_of_refusal(finding, row.src_ep, row.dst_ep)
    _suggest(engine, case, evidence, out)
    if out.fixes is not None:
        out.trace = out.fixes.trace


def port_and_protocol(row: Row) -> tuple[int, str]:
    label = row.key.port
    number, _, proto = label.partition("/")
    if number.isdigit():
        return int(number), proto or "TCP"
    if label.startswith("ICMP"):
        return row.sample.dst_port, label  # Hubble puts the ICMP type where a port would be
    return 0, label


def _forwarded(row: Row, engine: Any, out: Analysis) -> None:
    port, proto = port_and_protocol(row)
    src, dst = engine.subject_for_endpoint(row.src_ep), engine.subject_for_endpoint(row.dst_ep)
    out.trace = engine.trace(src, dst, port, proto)
    out.headline = out.trace.explanation()


def _suggest(engine: Any, case: Any, evidence: Evidence, out: Analysis) -> None:
    from hubbletui.suggest.fixes import suggest_for_case
    from hubbletui.suggest.observed import ObservedTraffic

    out.fixes = suggest_for_case(engine, case, ObservedTraffic(evidence.working), out.fmt)


def _plain_headline(row: Row, out: Analysis) -> str:
    if row.refusal is not None:
        return f"refused by {row.refusal.layer}: {row.refusal.summary}"
    if out.reason_info is not None:
        return f"{out.reason_info.name}: {out.reason_info.summary}"
    return row.key.verdict.lower()
