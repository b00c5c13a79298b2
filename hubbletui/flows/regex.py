"""Regular expressions from filters, matched in time linear in the text (RE2).

A filter's pattern comes from whoever sends the request: any gRPC client of `hubbletui serve`. Python's
backtracking engine takes exponential time on patterns like ``(a+)+$``, and one such search would hold the
server's event loop (every client, and its signal handling) for as long as it runs. RE2 never backtracks.
It is also the syntax Hubble itself accepts (Go's regexp is RE2), so a pattern means here what it means to
a Hubble server: no backreferences, no lookaround.
"""

from __future__ import annotations

from collections.abc import Callable

import re2

# RE2 refuses a pattern whose compiled program would take more memory than this (its default is 8 MiB):
# a bound on what one request can make the server build
MAX_PROGRAM_BYTES = 8 << 20

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a bad pattern is the client's error, answered to it: not a line in our log
_OPTIONS.max_mem = MAX_PROGRAM_BYTES


class RegexError(ValueError):
    """A pattern RE2 refuses: bad syntax, a Perl-only construct, or a program over MAX_PROGRAM_BYTES."""


def search_any(patterns: list[str], field: str) -> Callable[[str], bool]:
    """Whether any of ``patterns`` occurs in a text: one RE2 set, a single pass over the text however many
    patterns (Hubble ORs the values of one filter field). RegexError names ``field`` and the pattern refused."""
    found = re2.Set.SearchSet(_OPTIONS)
    for pattern in patterns:
        _check(pattern, field)  # a set refuses a pattern without saying why
        found.Add(pattern)
    try:
        found.Compile()
    except re2.error:
        raise RegexError(f"{field}: {len(patterns)} patterns too large to evaluate together") from None
    match = found.Match
    return lambda text: match(text) is not None


def _check(pattern: str, field: str) -> None:
    try:
        re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise RegexError(f"{field}: not a regular expression hubbletui can evaluate ({reason}): "
                         f"{_shown(pattern)}") from None


def _shown(pattern: str, limit: int = 80) -> str:
    return repr(pattern if len(pattern) <= limit else pattern[:limit] + "...")
