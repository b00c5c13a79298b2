"""Table cells and text pieces, always `rich.text.Text` built from plain strings.

DataTable reads a `str` cell as Rich markup, and names from the network may contain `[bold]` or escape
sequences, so every cell is a Text (control characters made visible by `printable`), and numbers are `Num`
cells that sort by value.
"""

from __future__ import annotations

import time

from rich.text import Text

from hubbletui.untrusted import printable

VERDICT_STYLE = {"DROPPED": "bold red", "ERROR": "bold red", "AUDIT": "yellow", "FORWARDED": "green",
                 "REDIRECTED": "cyan", "TRACED": "green", "TRANSLATED": "green"}
REFUSED_STYLE = "bold magenta"
DROP_ROW_STYLE = "red"


def cell(text: str, style: str = "") -> Text:
    """Untrusted text as a table cell with its own one-space margin: never parsed as markup, control characters
    shown as escapes. Tables draw cells without padding of their own (for DataTable that halves what a
    repaint of its cells costs)."""
    return Text(" " + printable(text), style=style, no_wrap=True, overflow="ellipsis", end="")


RIGHT_ALIGNED = frozenset({"rank", "drops", "rate", "count"})  # number columns: labels flush right too


def column_label(key: str, label: str, style: str = "") -> Text:
    """A column's header, on the side its numbers or names are flush with (one space of margin, as cells)."""
    right = key in RIGHT_ALIGNED
    return Text(f"{label} " if right else f" {label}", style=style, justify="right" if right else "left")


def same_cell(a: object, b: object) -> bool:
    """Would ``a`` draw as ``b`` does? Text equality ignores the Text's own style, which is how a row turns red."""
    if isinstance(a, Text) and isinstance(b, Text):
        return a.plain == b.plain and a.style == b.style and a.spans == b.spans
    return a == b


class Num:
    """A right-aligned number cell that sorts by its value."""

    __slots__ = ("value", "label", "style")

    def __init__(self, value: float, label: str | None = None, style: str = ""):
        self.value = value
        self.label = f"{value:,}" if label is None else label
        self.style = style

    def __rich__(self) -> Text:
        return Text(self.label + " ", style=self.style, justify="right", no_wrap=True, end="")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Num) and (self.value, self.label, self.style) == (other.value, other.label,
                                                                                    other.style)

    def __hash__(self) -> int:
        return hash((self.value, self.label))


class Stamp(Num):
    """A time-of-day cell (local time, as `hubble observe` prints) that sorts by nanoseconds."""

    __slots__ = ()

    def __init__(self, time_ns: int, style: str = ""):
        super().__init__(time_ns, clock_time(time_ns) if time_ns else "-", style)


def clock_time(time_ns: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(time_ns // 1_000_000_000))


def rate_label(per_second: float) -> str:
    if per_second >= 10_000:
        return f"{per_second / 1000:,.0f}k"
    if per_second >= 100:
        return f"{per_second:,.0f}"
    return f"{per_second:.1f}"
