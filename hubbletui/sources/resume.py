"""Resuming a broken flow stream without duplicates and without losing flows at the boundary.

A resumed request asks for ``since`` = the newest flow time already delivered. `since` is inclusive, so the
server sends every flow of that exact nanosecond again; several distinct flows can share it, and only some
of them may have arrived before the break. The tracker remembers the flows delivered at the newest time (a
multiset: a server may legitimately send two identical flows) and drops exactly those on the way back.

Per delivered flow the cost is one comparison and, rarely, a list append: identities are computed only
for the handful of flows at the boundary, when a resume actually happens.
"""

from __future__ import annotations

from collections import Counter

import orjson

from hubbletui.flows.decode import raw_flow_dict, raw_message
from hubbletui.flows.model import Flow


def flow_identity(flow: Flow) -> bytes | str:
    """What makes two deliveries the same flow: Hubble's uuid when it sent one, else the whole message."""
    body = raw_flow_dict(flow)
    if body is not None:
        return body.get("uuid") or orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    raw = flow.raw
    if type(raw) is bytes:
        return raw  # the server's own bytes for this delivery; uuid-less twins compare equal
    message = raw_message(flow).flow
    return message.uuid or message.SerializeToString(deterministic=True)


class ResumeTracker:
    __slots__ = ("newest_ns", "_at_newest", "boundary_ns", "_pending")

    def __init__(self) -> None:
        self.newest_ns: int | None = None
        self._at_newest: list[Flow] = []
        self.boundary_ns: int = -1  # flows at or before this time may be repeats of delivered ones
        self._pending: Counter = Counter()

    def delivered(self, flow: Flow) -> None:
        """Note a flow the server sent (whether or not it passed client-side checks)."""
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
        self.boundary_ns = self.newest_ns
        self._pending = Counter(flow_identity(f) for f in self._at_newest)
        return self.newest_ns

    def is_repeat(self, flow: Flow) -> bool:
        """True for a flow of the overlap: older than the boundary (the server ignored `since`) or one of the
        boundary flows already delivered. Call only when ``flow.time_ns <= boundary_ns``."""
        if flow.time_ns < self.boundary_ns:
            return True
        key = flow_identity(flow)
        left = self._pending.get(key, 0)
        if left:
            self._pending[key] = left - 1
            return True
        return False
