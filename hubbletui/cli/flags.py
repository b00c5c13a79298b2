"""Click hands a command every flag in one dict. Each option group declares a small frozen record whose fields
are its flags' names, and a command splits the dict into those records once, at its top. A flag that no record
claims is a bug (a new option nobody reads), so `split` refuses it: every command runs in the tests, which then
fail at once."""

from __future__ import annotations

from dataclasses import fields
from typing import Any


class UnclaimedFlags(RuntimeError):
    """A command declared a flag that none of its records reads."""


def split(kwargs: dict[str, Any], *records: type) -> tuple:
    """One instance of each record type from ``kwargs`` (by field name), in the order given."""
    rest = dict(kwargs)
    parts = []
    for record in records:
        names = [f.name for f in fields(record) if f.init]
        parts.append(record(**{name: rest.pop(name) for name in names if name in rest}))
    if rest:
        raise UnclaimedFlags(f"flags no part of the command reads: {', '.join(sorted(rest))}")
    return tuple(parts)
