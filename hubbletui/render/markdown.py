"""Untrusted text as literal Markdown: the one escaper every Markdown report uses."""

from __future__ import annotations

import re

from hubbletui.untrusted import printable

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")  # what could start markup mid-line ("<" opens HTML)
_MD_LEADING = re.compile(r"^(\s*)(\d+(?=[.)])|[#>+=-])")  # what starts a heading, quote or list at a line's start


def md_text(value: object) -> str:
    """Prose: every character Markdown could read as markup is escaped, control characters made visible (so
    the text stays one line)."""
    return _MD_LEADING.sub(_escape_leading, _MD_SPECIAL.sub(r"\\\1", printable(str(value))), count=1)


def _escape_leading(m: re.Match) -> str:
    mark = m.group(2)
    return m.group(1) + (mark + "\\" if mark[0].isdigit() else "\\" + mark)  # "1\." and "\#"
