"""An Analysis as styled Text: what Hubble saw, then each policy layer's verdict and why. Never markup."""

from __future__ import annotations

from rich.text import Text

from hubbletui.flows.store import WOULD_DROP, Row
from hubbletui.render.trace_lines import layer_lines
from hubbletui.untrusted import printable
from hubbletui.diagnose.analysis import Analysis
from hubbletui.tui.cells import REFUSED_STYLE, VERDICT_STYLE, clock_time

_ROLE_STYLE = {"allowed": "green", "denied": "bold red", "key": "bold cyan", "dim": "dim", "warn": "yellow"}


def _line(text: Text, *parts: tuple[str, str] | str, indent: int = 0) -> None:
    text.append(" " * indent)
    for part in parts:
        if isinstance(part, tuple):
            text.append(printable(part[0]), part[1])
        else:
            text.append(printable(part))
    text.append("\n")


def explanation_text(row: Row, analysis: Analysis | None) -> Text:
    text = Text()
    key = row.key
    verdict_style = REFUSED_STYLE if row.refusal else VERDICT_STYLE.get(key.verdict, "")
    _line(text, (f"{key.src} → {key.dst} {key.port.text}", "bold"))
    seen = f"{row.count:,} flows, {clock_time(row.first_ns)} to {clock_time(row.last_ns)}"
    verdict = "REFUSED (forwarded by Cilium)" if row.refusal else " ".join(filter(None, (key.verdict, key.reason)))
    if row.is_audit:
        verdict += " (policy audit mode passed it: enforcing drops it)"
    _line(text, ("Hubble: ", "dim"), (verdict, verdict_style), f"  {row.direction or ''}  ".rstrip() + "  ",
          (seen, "dim"))
    if analysis is None:
        _line(text, ("explaining…", "italic dim"))
        return text
    text.append("\n")
    _line(text, (analysis.headline, "bold"))
    if analysis.refusal is not None:
        for item in analysis.refusal.evidence:
            _line(text, ("evidence: ", "dim"), item, indent=2)
    info = analysis.reason_info
    if info is not None:
        _line(text, ("drop reason: ", "dim"), f"{info.name} ({info.code}, {info.category}) {info.summary}")
        if info.hint:
            _line(text, ("next: ", "dim"), info.hint, indent=2)
    trace = analysis.trace
    notes = list(analysis.notes)
    if trace is not None:
        notes += trace.notes
        if key.verdict not in WOULD_DROP and any(layer.verdict != "allowed" and layer.layer in ("egress", "ingress")
                                            for layer in trace.layers):
            notes.append("Hubble saw these flows forwarded, but the cluster state denies them at Cilium's layer: "
                         "the state is older or newer than the flows (a pod missing from a snapshot is judged by "
                         "its workload's template)")
    for note in dict.fromkeys(notes):
        _line(text, ("note: ", "yellow"), note)
    if trace is not None:
        text.append("\n")
        for layer in _layers_in_order(trace, row):
            _layer_text(text, layer, analysis.headline)
    text.rstrip()
    return text


def _layers_in_order(trace, row: Row) -> list:
    """The layer that decided first: Istio for a mesh refusal, else the side Hubble named, then the others."""
    first = "istio" if row.refusal is not None else (row.direction or "").lower()
    return sorted(trace.layers, key=lambda layer: layer.layer != first)


def _layer_text(text: Text, layer, headline: str) -> None:
    for line in layer_lines(layer, headline=headline):
        _line(text, *((part, _ROLE_STYLE.get(role, "")) for part, role in line.segments), indent=line.indent)
