"""An Analysis as styled Text: what Hubble saw, then each policy layer's verdict and why. Never markup."""

from __future__ import annotations

from rich.text import Text

from hubbletui.flows.store import Row
from hubbletui.untrusted import printable
from hubbletui.diagnose.analysis import Analysis
from hubbletui.tui.cells import REFUSED_STYLE, VERDICT_STYLE, clock_time

_LAYER_VERDICT_STYLE = {"allowed": "green", "denied": "bold red"}


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
    _line(text, (f"{key.src} → {key.dst} {key.port}", "bold"))
    seen = f"{row.count:,} flows, {clock_time(row.first_ns)} to {clock_time(row.last_ns)}"
    verdict = "REFUSED (forwarded by Cilium)" if row.refusal else " ".join(filter(None, (key.verdict, key.reason)))
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
        if key.verdict != "DROPPED" and any(layer.verdict != "allowed" and layer.layer in ("egress", "ingress")
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
    style = _LAYER_VERDICT_STYLE.get(layer.verdict, "")
    extra = f" ({layer.drop_reason})" if layer.drop_reason else ""
    _line(text, (f"{layer.layer}", "bold cyan"), " at ", layer.endpoint, ": ", (layer.verdict + extra, style))
    if layer.explanation not in headline:
        _line(text, layer.explanation, indent=2)
    if layer.isolated_by and not all(ref in layer.explanation for ref in layer.isolated_by):
        _line(text, ("isolated by: ", "dim"), ", ".join(layer.isolated_by), indent=2)
    for hit in layer.allowed_by:
        _line(text, ("allowed by: ", "dim"), f"{hit.get('ref', '')} {hit.get('path', '')}", indent=2)
    for hit in layer.denied_by:
        _line(text, ("denied by: ", "dim"), f"{hit.get('ref', '')} {hit.get('path', '')}", indent=2)
    if layer.nearest:
        _line(text, ("nearest rules:", "dim"), indent=2)
        for near in layer.nearest:
            where = f"{near.get('ref', '')} {near.get('path', '')}"
            scope = f"  [peers: {near['peers']}; ports: {near['ports']}]" if "peers" in near else ""
            _line(text, where, (scope, "dim"), indent=4)
            for lack in near.get("lacks", ()):
                _line(text, (f"lacks ({lack.get('side', '')}): ", "yellow"), str(lack.get("text", "")), indent=6)
    for item in layer.l7:
        _line(text, ("L7: ", "dim"), item, indent=2)
    for note in layer.notes:
        _line(text, ("note: ", "dim"), note, indent=2)
