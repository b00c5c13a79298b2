"""What the drop detail screen shows for one aggregated row: the explanation per layer, and the fixes.

The one place the TUI calls the policy layer, so the screens stay the same while it grows. No Textual here:
this runs in a worker thread. Without a cluster (no engine), the result says so instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hubbletui.errors import HubbleTuiError
from hubbletui.flows.store import Refusal, Row, RowKey
from hubbletui.policy import drop_reasons

NO_CLUSTER = ("no cluster: explanations and fixes need the policies, give --cluster PATH (a snapshot) or --live "
              "(read the cluster through the Kubernetes API)")


@dataclass
class Analysis:
    key: RowKey
    headline: str  # one line: "denied at egress of database/fdb-exporter: ..."
    trace: Any = None  # hubbletui.policy.result.TraceResult when the engine could trace it
    reason_info: drop_reasons.DropReasonInfo | None = None  # what Hubble's drop reason means
    refusal: Refusal | None = None
    notes: list[str] = field(default_factory=list)  # what could not be done, and why
    suggestions: list[Any] = field(default_factory=list)


def port_and_protocol(row: Row) -> tuple[int, str]:
    label = row.key.port
    number, _, proto = label.partition("/")
    if number.isdigit():
        return int(number), proto or "TCP"
    if label.startswith("ICMP"):
        return row.sample.dst_port, label  # Hubble puts the ICMP type where a port would be
    return 0, label


def analyse(row: Row, engine: Any) -> Analysis:
    key = row.key
    out = Analysis(key=key, headline="", refusal=row.refusal)
    if key.verdict == "DROPPED" and key.reason:
        out.reason_info = drop_reasons.describe(key.reason)
    if engine is None:
        out.headline = _headline_without_engine(row, out)
        out.notes.append(NO_CLUSTER)
        return out
    port, proto = port_and_protocol(row)
    try:
        src = engine.subject_for_endpoint(row.src_ep)
        dst = engine.subject_for_endpoint(row.dst_ep)
        out.trace = engine.trace(src, dst, port, proto)
    except HubbleTuiError as exc:
        out.notes.append(f"could not trace this connection: {exc}")
    except Exception as exc:  # noqa: BLE001 - one odd flow must not take the screen down; say what failed
        out.notes.append(f"the policy engine failed on this connection: {type(exc).__name__}: {exc}")
    out.headline = _headline(row, out)
    return out


def _headline_without_engine(row: Row, out: Analysis) -> str:
    if row.refusal is not None:
        return f"refused by {row.refusal.layer}: {row.refusal.summary}"
    if out.reason_info is not None:
        return f"{out.reason_info.name}: {out.reason_info.summary}"
    return f"{row.key.verdict.lower()}"


def _headline(row: Row, out: Analysis) -> str:
    trace = out.trace
    if row.refusal is not None:
        return f"refused by {row.refusal.layer}: {row.refusal.summary}"
    info = out.reason_info
    if info is not None and not drop_reasons.is_policy(info.name):
        return f"{info.name} ({info.category}): {info.summary}"
    if trace is None:
        return _headline_without_engine(row, out)
    if row.key.verdict == "DROPPED" and trace.allowed:
        return ("Hubble saw a policy drop, but the cluster state allows this connection now: the policy or "
                "the labels may have changed since")
    return trace.explanation()
