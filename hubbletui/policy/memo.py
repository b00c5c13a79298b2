"""Answers an engine has already given: traces and what-if views, each computed once per engine state.

`explain`, `suggest` and the TUI ask the same questions of one engine (a group's trace when it is explained,
again when its fixes are looked for, again as the checker's baseline; the same candidate's view from two
search paths). The memo answers repeats; `counts` says how many were computed and how many were repeats.
It is emptied whenever the engine changes (a followed cluster state moved).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Hashable, Iterable

import orjson

from hubbletui.policy.subjects import Subject

# past these the memo starts over (a long TUI session must not grow without bound); a view holds its own copies
# of the engine's tables, so few are kept
MAX_ENTRIES = {"trace": 50_000, "view": 512}


class Memo:
    """``counts`` may be shared: an engine's what-if views count into their base's, so one run is one tally."""

    def __init__(self, counts: Counter[str] | None = None):
        self.counts: Counter[str] = Counter() if counts is None else counts  # trace, trace-repeat, view, ...
        self._store: dict[str, dict[Hashable, object]] = {"trace": {}, "view": {}}

    def get(self, kind: str, key: Hashable) -> object | None:
        found = self._store[kind].get(key)
        self.counts[f"{kind}-repeat" if found is not None else kind] += 1
        return found

    def put(self, kind: str, key: Hashable, value: object) -> None:
        entries = self._store[kind]
        if len(entries) >= MAX_ENTRIES[kind]:
            entries.clear()
        entries[key] = value

    def clear(self) -> None:
        for entries in self._store.values():
            entries.clear()


def subject_key(s: Subject) -> tuple:
    """Everything of a subject a trace reads; subjects equal in all of it get the same answer."""
    return (s.id, s.kind, s.labels.key, s.namespace, s.name, s.workload, s.ip, tuple(sorted(s.named_ports.items())),
            s.host_network, s.service_account, s.dns_names, s.notes, id(s.obj))


def change_key(upserts: Iterable[dict], deletes: Iterable) -> str:
    """A digest of a what-if change: the same objects (in the same order) give the same view."""
    body = orjson.dumps([list(upserts), [d if isinstance(d, dict) else list(d) for d in deletes]],
                        option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.blake2b(body, digest_size=16).hexdigest()
