"""Untrusted text stays text: names, labels and URLs from the network are shown, never interpreted.

Terminal control characters (C0, DEL, C1: ESC sequences, CSI as the one character U+009B, bells, carriage
returns that overwrite a line) and the Unicode line and paragraph separators (U+2028, U+2029: a line break to
some terminals, editors and JavaScript) become visible escapes. In plain-text output that is all a reader can
misread; JSON output gets the same through ``json_safe``.
"""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match) -> str:
    ch = match.group()
    code = ord(ch)
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


def printable(text: str) -> str:
    """``text`` with every control character and line/paragraph separator replaced by a visible escape."""
    return _CONTROL.sub(_escape, text) if _CONTROL.search(text) else text


# orjson (as the JSON standard allows) writes DEL, C1 and U+2028/U+2029 as raw characters; C0 it escapes
# already. In UTF-8 they are 7f, c2 80..9f and e2 80 a8/a9, bytes that occur only inside JSON strings, where
# \uXXXX means the same character: escaping them changes nothing a JSON reader sees.
_JSON_UNSAFE = re.compile(b"\x7f|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]")


def _json_escape(match: re.Match) -> bytes:
    return b"\\u%04x" % ord(match.group().decode())


def json_safe(data: bytes) -> bytes:
    """Serialized JSON (UTF-8) with DEL, C1 controls and the line/paragraph separators written as \\uXXXX."""
    if b"\x7f" in data or b"\xc2" in data or b"\xe2\x80" in data:  # memchr-fast; rarely any of them
        return _JSON_UNSAFE.sub(_json_escape, data)
    return data
