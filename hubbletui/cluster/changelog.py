"""The change log of an incident bundle: one JSON object per line, a cluster change each.

    {"time": 1733400000.25, "kind": "Deployment", "namespace": "obs", "name": "exporter", "object": {...}}

`object` is null for a delete. The log is appended while recording, so a crash can leave its last line
half-written: the reader reports each bad line with its number (like a bad recording line) and keeps the rest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

from hubbletui.cluster.model import KINDS
from hubbletui.cluster.timeline import Timeline, TimelineEntry


@dataclass(frozen=True)
class LoggedChange:
    time: float
    kind: str
    namespace: str
    name: str
    obj: dict | None


def write_change(out: TextIO, entry: TimelineEntry) -> None:
    """Append one change and flush, so what was recorded survives the recorder dying."""
    ns, name = entry.key
    out.write(json.dumps({"time": entry.time, "kind": entry.kind, "namespace": ns, "name": name,
                          "object": entry.new}, separators=(",", ":"), sort_keys=True) + "\n")
    out.flush()


def read_changes(lines: Iterable[str], source: str) -> tuple[list[LoggedChange], list[str]]:
    """Parse a change log; returns the good changes and one warning per bad line (`source:N: why`)."""
    changes: list[LoggedChange] = []
    warnings: list[str] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
            kind, obj, at = rec.get("kind"), rec.get("object"), rec.get("time")
            if kind not in KINDS:
                raise ValueError(f"unknown kind {kind!r}")
            if not isinstance(at, (int, float)) or isinstance(at, bool):
                raise ValueError("no numeric time")
            if obj is not None and not isinstance(obj, dict):
                raise ValueError("object is neither an object nor null")
            changes.append(LoggedChange(float(at), kind, str(rec.get("namespace") or ""),
                                        str(rec.get("name") or ""), obj))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            warnings.append(f"{source}:{number}: skipped change: {exc}")
    return changes, warnings


def replay_into(timeline: Timeline, changes: Iterable[LoggedChange]) -> None:
    """Apply logged changes to the timeline's store at their logged times (not at the time of reading)."""
    state = timeline.state
    for c in changes:
        timeline.record(c.kind, (c.namespace, c.name), c.obj, c.time)
        # the store's listener would record again at the wall clock; the timeline sees the same version
        # and treats it as no change
        if c.obj is None:
            state.delete(c.kind, (c.namespace, c.name))
        else:
            state.upsert(c.obj)
