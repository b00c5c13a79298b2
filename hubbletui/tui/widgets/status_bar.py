"""The status bar: where flows come from and how that is going, rates, losses, following or paused."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual.widget import Widget

from hubbletui.untrusted import printable
from hubbletui.sources.base import CONNECTING, ENDED, FAILED, PAUSED, RETRYING, STREAMING, SourceState
from hubbletui.tui.cells import rate_label

_STATE_STYLE = {STREAMING: "green", CONNECTING: "yellow", RETRYING: "yellow", FAILED: "bold red", ENDED: "dim",
                PAUSED: "yellow"}


@dataclass(frozen=True)
class StatusInfo:
    source: str
    state: SourceState | None
    flows_per_s: float
    drops_per_s: float
    lost_events: int
    buffer_dropped: int
    unavailable_nodes: tuple[str, ...] = ()
    following: bool = True
    unseen: int = 0  # flows that arrived while paused
    flows_total: int = 0
    scope: str = ""  # the active filter, as typed
    notes: tuple[str, ...] = field(default_factory=tuple)
    unreadable_kinds: tuple[str, ...] = ()  # live cluster kinds not (yet) readable: answers on them are incomplete


def render_status(info: StatusInfo) -> Text:
    """Following or paused first (the state keys change), then the source, rates, counts and what went missing."""
    sep = (" │ ", "dim")
    parts: list[tuple[str, str] | str] = []
    if info.following:
        parts.append(("▶ FOLLOWING", "bold green"))
    else:
        parts.append(("■ PAUSED", "bold yellow"))
        if info.unseen:
            parts.append((f" +{info.unseen:,} new", "yellow"))
    state = info.state
    name = state.state if state else CONNECTING
    style = _STATE_STYLE.get(name, "")
    detail = printable(state.detail) if state and state.detail and name != STREAMING else ""
    said = detail if detail.startswith(name) else f"{name}: {detail}" if detail else name
    parts += [sep, ("● ", style), printable(info.source), " ", (said, style)]
    parts += [sep, (rate_label(info.flows_per_s), "bold"), " flows/s ",
              (rate_label(info.drops_per_s), "bold red" if info.drops_per_s else "bold"), " drops/s",
              sep, f"{info.flows_total:,} flows"]
    if info.lost_events:
        parts += [sep, (f"lost {info.lost_events:,}", "bold yellow")]
    if info.buffer_dropped:
        parts += [sep, (f"buffer dropped {info.buffer_dropped:,}", "bold yellow")]
    if info.unavailable_nodes:
        nodes = ", ".join(printable(n) for n in info.unavailable_nodes[:3])
        more = f" +{len(info.unavailable_nodes) - 3}" if len(info.unavailable_nodes) > 3 else ""
        parts += [sep, (f"nodes unavailable: {nodes}{more}", "bold yellow")]
    if info.unreadable_kinds:
        kinds = ", ".join(printable(k) for k in info.unreadable_kinds[:3])
        more = f" +{len(info.unreadable_kinds) - 3}" if len(info.unreadable_kinds) > 3 else ""
        parts += [sep, (f"cluster incomplete: {kinds}{more}", "bold yellow")]
    if info.scope:
        parts += [sep, ("filter ", "dim"), (printable(info.scope), "cyan")]
    return Text.assemble(*parts, no_wrap=True, overflow="ellipsis")


class StatusBar(Widget):
    """One line, redrawn in place: Static.update would ask for a layout of the whole screen on every tick."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; padding: 0 1; }
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._last: StatusInfo | None = None
        self._text = Text()

    def show(self, info: StatusInfo) -> None:
        if info != self._last:
            self._last = info
            self._text = render_status(info)
            self.refresh()

    def render(self) -> Text:
        return self._text
