"""Untrusted text stays text: names, labels and URLs from the network are shown, never interpreted.

Terminal control characters (C0, DEL, C1: ESC sequences, bells, carriage returns that overwrite a line)
become visible escapes; in plain-text output that is all a terminal can misread.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _escape(match: re.Match) -> str:
    ch = match.group()
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, f"\\x{ord(ch):02x}")


def printable(text: str) -> str:
    """``text`` with every control character replaced by a visible escape."""
    return _CONTROL.sub(_escape, text) if _CONTROL.search(text) else text
