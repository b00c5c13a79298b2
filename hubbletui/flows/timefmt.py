"""RFC 3339 timestamps with nanoseconds, as Hubble writes them, to and from integer nanoseconds.

`datetime.fromisoformat` keeps only microseconds, and exact nanoseconds matter: a resumed stream drops its
overlap by comparing flow times. Lines in one recording share most of their seconds prefix, so the
prefix -> epoch conversion is cached.
"""

from __future__ import annotations

import calendar
import re
import time
from datetime import datetime, timezone

_SECONDS_CACHE: dict[str, int] = {}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
            "h": 3_600_000_000_000, "d": 86_400_000_000_000}


def parse_rfc3339_ns(text: str) -> int:
    """'2021-06-16T16:52:13.136834446Z' -> ns since the epoch. Raises ValueError on anything else."""
    if len(text) == 30 and text[29] == "Z":  # Hubble's own form, YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ: the fast path
        secs = _SECONDS_CACHE.get(text[:20])  # the seconds and the dot
        if secs is not None:
            frac = text[20:29]
            if frac.isdigit():
                return secs * 1_000_000_000 + int(frac)
    head = text[:19]
    secs = _SECONDS_CACHE.get(head)
    if secs is None:
        if len(head) != 19 or head[10] not in "Tt ":
            raise ValueError(f"not an RFC 3339 time: {text[:40]!r}")
        secs = calendar.timegm(time.strptime(head.replace("t", "T").replace(" ", "T"), "%Y-%m-%dT%H:%M:%S"))
        if len(_SECONDS_CACHE) > 100_000:
            _SECONDS_CACHE.clear()
        _SECONDS_CACHE[head] = secs
        if text[19:20] == ".":
            _SECONDS_CACHE[text[:20]] = secs
    rest = text[19:]
    nanos = 0
    if rest[:1] == ".":
        end = 1
        while end < len(rest) and rest[end].isdigit():
            end += 1
        digits = rest[1:end]
        nanos = int(digits[:9].ljust(9, "0")) if digits else 0
        rest = rest[end:]
    if rest in ("Z", "z"):
        offset = 0
    elif len(rest) == 6 and rest[0] in "+-" and rest[3] == ":":
        offset = (int(rest[1:3]) * 3600 + int(rest[4:6]) * 60) * (1 if rest[0] == "+" else -1)
    else:
        raise ValueError(f"not an RFC 3339 time: {text[:40]!r}")
    return (secs - offset) * 1_000_000_000 + nanos


def format_rfc3339_ns(ns: int) -> str:
    secs, nanos = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    return f"{base}.{nanos:09d}Z" if nanos else f"{base}Z"


def parse_duration_ns(text: str) -> int:
    """Go-style durations as hubble takes them: '30s', '5m', '1h30m', '1.5h', '2d'."""
    pos, total = 0, 0
    text = text.strip()
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += int(float(match[1]) * _UNIT_NS[match[2]])
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"not a duration: {text!r} (try 30s, 5m, 1h30m)")
    return total


def parse_time_arg(text: str, now_ns: int | None = None) -> int:
    """--since/--until values: an RFC 3339 time, a date, or a duration meaning that long ago."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    try:
        return now_ns - parse_duration_ns(text)
    except ValueError:
        pass
    try:
        return parse_rfc3339_ns(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a time or duration: {text!r} (try 5m, 2h, or 2026-11-28T10:00:00Z)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp()) * 1_000_000_000 + parsed.microsecond * 1000
