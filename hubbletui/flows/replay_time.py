"""Replaying recorded time: when each event plays, pacing to that schedule, and moving events to a later loop.

Shared by the in-process RecordingSource and the replay server, so both play a recording the same way:
events leave at their recorded gaps divided by the speed; time never runs backwards (a recording is not
re-sorted, and an event older than the one before it plays right after it); an event without a time plays
with the one before it. A looped recording plays again one second (of recorded time) after its end, its
times moved forward by a whole period so that time keeps increasing and a resumed stream stays consistent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator

import orjson

from hubbletui.flows.model import Event
from hubbletui.proto.observer import observer_pb2
from hubbletui.flows.timefmt import format_rfc3339_ns, parse_rfc3339_ns

LOOP_GAP_NS = 1_000_000_000


def with_offsets(events: Iterable[Event]) -> Iterator[tuple[Event, int]]:
    """Each event with the ns after the first timed event at which it plays (non-decreasing)."""
    start = None
    current = 0
    for event in events:
        t = event.time_ns
        if t:
            if start is None:
                start = t
            elif t - start > current:
                current = t - start
        yield event, current


def play_offsets(events: Iterable[Event]) -> list[int]:
    return [offset for _, offset in with_offsets(events)]


def loop_period_ns(offsets: list[int]) -> int:
    return (offsets[-1] if offsets else 0) + LOOP_GAP_NS


def shift_event(event: Event, delta_ns: int) -> Event:
    """The same event ``delta_ns`` later, its original message (``raw``) moved too, so output stays consistent."""
    if not delta_ns:
        return event
    return event._replace(time_ns=event.time_ns + delta_ns if event.time_ns else 0,
                          raw=shift_raw(event.raw, delta_ns))


def shift_raw(raw, delta_ns: int):
    if type(raw) is bytes:
        if raw[:1] == b"{":
            return orjson.dumps(shift_raw(orjson.loads(raw), delta_ns))
        moved = observer_pb2.GetFlowsResponse.FromString(raw)
        shift_message(moved, delta_ns)
        return moved.SerializeToString()
    if isinstance(raw, dict):
        out = dict(raw)
        if raw.get("time"):
            out["time"] = format_rfc3339_ns(parse_rfc3339_ns(raw["time"]) + delta_ns)
        body = raw.get("flow")
        if isinstance(body, dict) and body.get("time"):
            out["flow"] = {**body, "time": format_rfc3339_ns(parse_rfc3339_ns(body["time"]) + delta_ns)}
        return out
    moved = type(raw)()
    moved.CopyFrom(raw)
    shift_message(moved, delta_ns)
    return moved


def shift_message(response, delta_ns: int) -> None:
    """Move a GetFlowsResponse (in place) by ``delta_ns``: its own time and its flow's."""
    if response.HasField("time"):
        response.time.FromNanoseconds(response.time.ToNanoseconds() + delta_ns)
    if response.HasField("flow") and response.flow.HasField("time"):
        response.flow.time.FromNanoseconds(response.flow.time.ToNanoseconds() + delta_ns)


class LoopClock:
    """The running event loop's clock: what replays wait on, unless a test steps its own."""

    @staticmethod
    def now() -> float:
        return asyncio.get_running_loop().time()

    @staticmethod
    async def sleep(seconds: float) -> None:
        await asyncio.sleep(seconds)


class Pacer:
    """Waits until an offset's moment: the first call anchors offset 0 to now, later ones follow at ``speed``.

    The schedule is absolute, so time spent by the consumer is not added to every gap. ``clock`` has `now()`
    and `async sleep(seconds)`.
    """

    def __init__(self, speed: float, clock=None):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self.clock = clock or LoopClock()
        self._start: float | None = None

    async def wait(self, offset_ns: int) -> None:
        clock = self.clock
        at = offset_ns / 1e9 / self.speed
        if self._start is None:
            self._start = clock.now() - at
        delay = self._start + at - clock.now()
        if delay > 0.001:  # below a millisecond a sleep costs more than the gap
            await clock.sleep(delay)
