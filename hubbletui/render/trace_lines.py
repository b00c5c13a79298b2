"""A trace's layers as lines of styled segments: the one wording `trace`, `explain` and the TUI share.

A segment's style is a role ("key", "dim", "warn", "allowed", "denied"), not a colour: plain text drops it
(`plain`), the TUI maps it to a colour. Segments hold raw text; whoever prints them makes it printable.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from hubbletui.policy.result import LayerResult, TraceResult
from hubbletui.untrusted import printable


class Line(NamedTuple):
    indent: int
    segments: tuple[tuple[str, str], ...]  # (text, role); role "" is plain


def _line(indent: int, *parts: tuple[str, str] | str) -> Line:
    return Line(indent, tuple(p if isinstance(p, tuple) else (p, "") for p in parts))


def layer_lines(layer: LayerResult, *, indent: int = 0, headline: str = "") -> Iterator[Line]:
    """Every fact of one layer: verdict, why, which rules allowed or denied, the nearest rules and what each
    lacks, L7 and notes. The explanation is left out when ``headline`` already says it."""
    extra = f" ({layer.drop_reason})" if layer.drop_reason else ""
    yield _line(indent, (layer.layer, "key"), " at ", layer.endpoint, ": ", (layer.verdict + extra, layer.verdict))
    inner = indent + 2
    if not headline or layer.explanation not in headline:
        yield _line(inner, layer.explanation)
    if layer.isolated_by and not (headline and all(ref in layer.explanation for ref in layer.isolated_by)):
        yield _line(inner, ("isolated by: ", "dim"), ", ".join(layer.isolated_by))
    for hit in layer.allowed_by:
        yield _line(inner, ("allowed by: ", "dim"), hit.where)
    for hit in layer.denied_by:
        yield _line(inner, ("denied by: ", "dim"), hit.where)
    if layer.nearest:
        yield _line(inner, ("nearest rules:", "dim"))
        for near in layer.nearest:
            yield _line(inner + 2, near.hit.where, (f"  [peers: {near.peers}; ports: {near.ports}]", "dim"))
            for lack in near.lacks:
                yield _line(inner + 4, (f"lacks ({lack.side}): ", "warn"), lack.text)
    for item in layer.l7:
        yield _line(inner, ("L7: ", "dim"), item)
    for note in layer.notes:
        yield _line(inner, ("note: ", "dim"), note)


def brief_layer_lines(layer: LayerResult, *, indent: int = 2, nearest: int = 3) -> Iterator[Line]:
    """The short form a report of many groups gives: the first nearest rules in a line each, and denials."""
    for near in layer.nearest[:nearest]:
        lacks = "; ".join(lack.text for lack in near.lacks)
        yield _line(indent, ("nearest: ", "dim"), f"{near.hit.where} lacks {lacks}")
    for hit in layer.denied_by:
        yield _line(indent, ("denied by: ", "dim"), hit.where)


def trace_lines(result: TraceResult) -> Iterator[Line]:
    """A whole trace: the verdict, then each layer, then the trace's notes."""
    yield _line(0, f"{result.src.id} -> {result.dst.id} {result.port_label}: ", (result.answer.upper(), "key"))
    for condition in result.conditions:
        yield _line(2, (f"condition ({condition.kind}, {condition.layer}): ", "warn"), condition.text)
    for layer in result.layers:
        yield from layer_lines(layer, indent=2)
    for note in result.notes:
        yield _line(2, ("note: ", "dim"), note)


def plain(lines) -> str:
    """Lines as plain terminal text, every segment made printable."""
    return "\n".join(" " * line.indent + "".join(printable(text) for text, _ in line.segments) for line in lines)


def render_trace(result: TraceResult) -> str:
    return plain(trace_lines(result))
