"""Resuming a broken flow stream without duplicates and without losing flows at the boundary.

A resumed request asks for ``since`` = the newest flow time already delivered. `since` is inclusive, so the
server sends every flow of that exact nanosecond again; several distinct flows can share it, and only some
of them may have arrived before the break. The tracker remembers the flows delivered at the newest time (a
multiset: a server may legitimately send two identical flows) and drops exactly those on the way back.

Flows older than the boundary can come too: a server that ignores `since` replays its buffer, and a relay
merging several nodes can deliver a late node's older flows after the break. They are repeats only if they
were delivered: the tracker remembers the last WINDOW delivered flows and drops an older flow only when its
identity (Hubble's uuid) is among them, or when it is older than everything remembered (a replay from
before the window; nothing there can be told apart any more).

Per delivered flow the cost is one comparison and a deque append: identities are computed only when a resume
actually happens, for the flows remembered.
"""

from __future__ import annotations

from collections import Counter, deque

import orjson

from hubbletui.flows.decode import raw_flow_dict, raw_message
from hubbletui.flows.model import Flow


def flow_identity(flow: Flow) -> bytes | str:
    """What makes two deliveries the same flow: Hubble's uuid when it sent one, else the whole message."""
    body = raw_flow_dict(flow)
    if body is not None:
        return body.get("uuid") or orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    message = raw_message(flow).flow
    return message.uuid or message.SerializeToString(deterministic=True)


WINDOW = 4096  # delivered flows remembered for telling older repeats from older new flows


class ResumeTracker:
    __slots__ = ("newest_ns", "_at_newest", "boundary_ns", "_pending", "_recent", "_older", "_window_start")

    def __init__(self) -> None:
        self.newest_ns: int | None = None
        self._at_newest: list[Flow] = []
        self.boundary_ns: int = -1  # flows at or before this time may be repeats of delivered ones
        self._pending: Counter = Counter()
        self._recent: deque[Flow] = deque(maxlen=WINDOW)
        self._older: Counter = Counter()  # identities of remembered flows older than the boundary
        self._window_start: int | None = None  # the oldest remembered time once the window is full

    def delivered(self, flow: Flow) -> None:
        """Note a flow the server sent (whether or not it passed client-side checks)."""
        self._recent.append(flow)
        t = flow.time_ns
        newest = self.newest_ns
        if newest is None or t > newest:
            self.newest_ns = t
            self._at_newest = [flow]
        elif t == newest:
            self._at_newest.append(flow)

    @property
    def at_boundary(self) -> int:
        """How many delivered flows carry the newest time (a resumed `first N` must ask for that many more)."""
        return len(self._at_newest)

    def resume(self) -> int | None:
        """Start a resume: the `since` to ask for (None if nothing was delivered yet)."""
        if self.newest_ns is None:
            return None
        newest = self.boundary_ns = self.newest_ns
        self._pending = Counter(flow_identity(f) for f in self._at_newest)
        recent = self._recent
        self._older = Counter(flow_identity(f) for f in recent if f.time_ns < newest)
        self._window_start = min(f.time_ns for f in recent) if len(recent) == recent.maxlen else None
        return newest

    def is_repeat(self, flow: Flow) -> bool:
        """True for a flow of the overlap: one delivered already (at the boundary, or older and remembered),
        or older than anything remembered. Call only when ``flow.time_ns <= boundary_ns``."""
        key = flow_identity(flow)
        if flow.time_ns < self.boundary_ns:
            if self._window_start is not None and flow.time_ns < self._window_start:
                return True
            left = self._older.get(key, 0)
            if left:
                self._older[key] = left - 1
                return True
            return False
        left = self._pending.get(key, 0)
        if left:
            self._pending[key] = left - 1
            return True
        return False
