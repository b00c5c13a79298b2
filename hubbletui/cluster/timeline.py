"""A bounded history of cluster changes, and a view of the state as it was at a given time.

Each flow should be judged against the cluster as it was when the flow happened, not as it is now. The
timeline listens to a ClusterState and keeps, per change, the object's old and new version (references to
the API dicts the store already holds: the store replaces objects, it never mutates them, so nothing is
copied). `state_at(t)` returns a view over the current store that, for an object changed after `t`, answers with
the old version of its first change after `t`: each object keeps its own short list of change times, so a
view costs a bisect, whatever the time asked for and however many changes came since.

The window is bounded by count and age; a view older than what the window still holds says so
(`complete` is False) so callers can mark a verdict as judged against a later state.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time as _time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from hubbletui.cluster.model import KINDS, Change, ClusterState, Key

DEFAULT_MAX_CHANGES = 10_000
DEFAULT_MAX_AGE_S = 3600.0


@dataclass(frozen=True)
class TimelineEntry:
    time: float  # seconds since the epoch, as the watch delivered it (or as a recording's change log says)
    kind: str
    key: Key
    old: dict | None  # None: the object was created
    new: dict | None  # None: the object was deleted

    @property
    def action(self) -> str:
        if self.old is None:
            return "created"
        return "deleted" if self.new is None else "modified"

    def describe(self) -> str:
        """'CiliumNetworkPolicy database/default-deny was modified: spec.egress changed'."""
        ns, name = self.key
        head = f"{self.kind} {ns + '/' if ns else ''}{name} was {self.action}"
        fields = changed_fields(self.old, self.new)
        return f"{head}: {', '.join(fields)} changed" if fields else head


def changed_fields(old: dict | None, new: dict | None) -> list[str]:
    """Dotted paths (two levels deep) that differ, ignoring bookkeeping metadata the API server rewrites."""
    if old is None or new is None:
        return []
    out: list[str] = []
    for top in sorted(set(old) | set(new)):
        if top in ("status", "apiVersion", "kind"):
            continue
        a, b = old.get(top), new.get(top)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for sub in sorted(set(a) | set(b)):
                if top == "metadata" and sub not in ("labels", "annotations"):
                    continue
                if a.get(sub) != b.get(sub):
                    out.append(f"{top}.{sub}")
        else:
            out.append(top)
    return out


class Timeline:
    """Subscribes to a ClusterState and records its changes within a window of `max_changes` and `max_age_s`."""

    def __init__(self, state: ClusterState, max_changes: int = DEFAULT_MAX_CHANGES,
                 max_age_s: float = DEFAULT_MAX_AGE_S, clock: Callable[[], float] = _time.time) -> None:
        self.state = state
        self.max_changes = max_changes
        self.max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: deque[TimelineEntry] = deque()
        self._times: deque[float] = deque()  # parallel to _entries, for bisect
        self.evicted = 0
        # per object, its changes in the window (times and old versions, oldest first), grouped by kind so a
        # view's `list` only visits the objects of that kind that changed
        self._history: dict[str, dict[Key, tuple[list[float], list[dict | None]]]] = {k: {} for k in KINDS}
        self.oldest_complete: float = clock()  # views at or after this time are exact
        # the last version seen per object: the store hands listeners only the new version
        self._entry_listeners: list[Callable[[TimelineEntry], None]] = []
        with state.lock:  # no change slips between the versions seen here and the subscription
            self._seen: dict[tuple[str, Key], dict] = {
                (kind, key): obj for kind in KINDS for key, obj in state.objects[kind].items()}
            self._unsubscribe = state.subscribe(self._on_change)

    def subscribe(self, listener: Callable[[TimelineEntry], None]) -> None:
        """``listener(entry)`` after each change recorded (a bundle's change log is written this way)."""
        self._entry_listeners.append(listener)

    def close(self) -> None:
        self._unsubscribe()

    def _on_change(self, change: Change) -> None:
        self.record(change.kind, change.key, change.obj, self._clock())

    def record(self, kind: str, key: Key, new: dict | None, at: float) -> None:
        """Note that (kind, key) became `new` (None: deleted) at time `at`; a no-op change is not recorded."""
        with self._lock:
            old = self._seen.get((kind, key))
            if old is new or (old is not None and new is not None and old == new):
                return
            if new is None:
                self._seen.pop((kind, key), None)
            else:
                self._seen[(kind, key)] = new
            if self._times and at < self._times[-1]:
                at = self._times[-1]  # keep the log ordered even if a clock steps back
            self._entries.append(TimelineEntry(at, kind, key, old, new))
            times, olds = self._history.setdefault(kind, {}).setdefault(key, ([], []))
            times.append(at)
            olds.append(old)
            self._times.append(at)
            self._trim(at)
            entry = self._entries[-1]
        for listener in self._entry_listeners:
            listener(entry)

    def _trim(self, now: float) -> None:
        while self._entries and (len(self._entries) > self.max_changes
                                 or now - self._times[0] > self.max_age_s):
            dropped = self._entries.popleft()
            per_kind = self._history[dropped.kind]
            times, olds = per_kind[dropped.key]
            del times[0], olds[0]  # the object's oldest change is the log's oldest
            if not times:
                del per_kind[dropped.key]
            self._times.popleft()
            self.evicted += 1
            self.oldest_complete = dropped.time

    def entries(self, since: float | None = None) -> list[TimelineEntry]:
        with self._lock:
            if since is None:
                return list(self._entries)
            i = bisect.bisect_right(self._times, since)
            return list(itertools.islice(self._entries, i, None))

    def state_at(self, t: float) -> StateView:
        """The cluster as of time `t` (changes at exactly `t` count as already applied)."""
        complete = t >= self.oldest_complete or self.evicted == 0
        return StateView(self, t, complete)

    def version_at(self, kind: str, key: Key, t: float) -> tuple[bool, dict | None]:
        """(True, old version) if the object changed after `t`; (False, None) if the store's version holds."""
        with self._lock:
            hist = self._history.get(kind, {}).get(key)
            if hist is None:
                return False, None
            i = bisect.bisect_right(hist[0], t)
            return (True, hist[1][i]) if i < len(hist[0]) else (False, None)

    def position(self, t: float) -> int:
        """How many changes had happened by time `t`, counted from the first ever recorded (evicted ones too):
        two times with the same position see the same cluster."""
        with self._lock:
            if not self._times or t >= self._times[-1]:
                return self.evicted + len(self._times)
            return self.evicted + bisect.bisect_right(self._times, t)

    @property
    def total(self) -> int:
        """The position of "now": every change recorded so far."""
        return self.evicted + len(self._times)

    def reverted_at(self, t: float) -> list[tuple[str, Key, dict | None]]:
        """(kind, key, version as of `t`) for every object changed after `t`; None: it did not exist then."""
        return [(kind, key, old) for kind in KINDS for key, old in sorted(self.changed_after(kind, t).items())]

    def changed_after(self, kind: str, t: float) -> dict[Key, dict | None]:
        """The objects of `kind` changed after `t`, each with its version as of `t` (None: absent then)."""
        with self._lock:
            out = {}
            for key, (times, olds) in self._history.get(kind, {}).items():
                i = bisect.bisect_right(times, t)
                if i < len(times):
                    out[key] = olds[i]
            return out


class StateView:
    """Read-only `get`/`list` over a ClusterState with the objects changed after `at` put back as they were."""

    def __init__(self, timeline: Timeline, at: float, complete: bool) -> None:
        self._timeline = timeline
        self._state = timeline.state
        self.at = at
        self.complete = complete  # False: `at` is older than the window; later changes may be missing

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        changed, old = self._timeline.version_at(kind, (namespace, name), self.at)
        return old if changed else self._state.get(kind, namespace, name)

    def list(self, kind: str) -> list[dict]:
        current = dict(self._state.objects.get(kind, {}))
        for key, obj in self._timeline.changed_after(kind, self.at).items():
            if obj is None:
                current.pop(key, None)
            else:
                current[key] = obj
        return [current[k] for k in sorted(current)]
