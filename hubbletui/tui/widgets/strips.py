"""Text to segments for the Line-API widgets: the plain text with its styles, never read as markup."""

from __future__ import annotations

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text


def text_segments(text: Text, console: Console) -> list[Segment]:
    """``text`` as one line of segments, each with the Text's own style under its spans' styles. Widgets
    apply their background at draw time (`Strip.apply_style`), so these stay valid across focus and theme."""
    if not text.style:
        return list(text.render(console))
    # Text.render applies the Text's own style only together with spans: give it to every segment here
    return list(Segment.apply_style(text.render(console), console.get_style(text.style, default=Style.null())))
