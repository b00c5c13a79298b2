"""A recording as a live source: events paced by their recorded gaps (scaled by a speed) or as fast as the
consumer takes them, optionally looping. What the TUI and the demo replay."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing

from hubbletui.errors import HubbleTuiError
from hubbletui.flows.model import Event
from hubbletui.flows.recording import RecordingReader
from hubbletui.flows.request import FlowQuery
from hubbletui.flows.select import select
from hubbletui.sources.base import ENDED, FAILED, STREAMING, SourceState, SourceStats
from hubbletui.sources.tally import tally
from hubbletui.flows.replay_time import Pacer, loop_period_ns, play_offsets, shift_event, with_offsets

YIELD_EVERY = 256  # unpaced: give the event loop a turn this often, so a big file never freezes a UI


def _stderr(message: str) -> None:
    print(f"hubbletui: {message}", file=sys.stderr)


class RecordingSource:
    """Events of a jsonpb recording (path, or '-' for stdin).

    ``speed``: 1.0 plays at recorded pace, 10.0 ten times faster, None unpaced. ``loop``: play again, each
    pass moved one recording-length later in time. ``query`` filters as `observe --input-file` does.
    Malformed lines go to ``report`` (stderr by default; a TUI passes its own) and are counted. ``clock``
    paces the replay (the event loop's by default; see `replay_time.Pacer`).
    """

    def __init__(self, path: str | os.PathLike, *, speed: float | None = 1.0, loop: bool = False,
                 query: FlowQuery | None = None, report: Callable[[str], None] = _stderr, clock=None):
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive (None for unpaced)")
        self.path = path
        self.speed = speed
        self.loop = loop
        self.query = query
        self.report = report
        self.clock = clock
        self.stats = SourceStats()
        self.name = "<stdin>" if path == "-" else os.path.basename(os.fspath(path))

    def describe(self) -> str:
        pace = "unpaced" if self.speed is None else f"{self.speed:g}x"
        return f"recording {self.name} ({pace}{', looping' if self.loop else ''})"

    async def events(self) -> AsyncIterator[Event | SourceState]:
        yield SourceState(STREAMING, self.describe())
        reader = RecordingReader(self.path, self.report)
        events = select(reader, self.query) if self.query is not None else iter(reader)
        kept: list[Event] = []
        pacer = Pacer(self.speed, self.clock) if self.speed is not None else None
        stats = self.stats
        try:
            async with aclosing(self._first_pass(events, kept if self.loop else None, reader)) as first:
                async for event, offset in first:
                    if pacer is not None:
                        await pacer.wait(offset)
                    tally(stats, event)
                    yield event
        except HubbleTuiError as exc:
            yield SourceState(FAILED, str(exc))
            return
        if not self.loop or not kept:
            yield SourceState(ENDED, f"{stats.flows} flows")
            return
        offsets = play_offsets(kept)
        period = loop_period_ns(offsets)
        passes = 1
        while True:
            delta = passes * period
            for count, (event, offset) in enumerate(zip(kept, offsets)):
                if pacer is not None:
                    await pacer.wait(delta + offset)
                elif count % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                event = shift_event(event, delta)
                tally(stats, event)
                yield event
            passes += 1

    async def _first_pass(self, events, kept: list | None, reader: RecordingReader):
        """(event, play offset) while reading: the file is decoded as it plays, never loaded up front."""
        for count, (event, offset) in enumerate(with_offsets(events)):
            if kept is not None:
                kept.append(event)
            if count % YIELD_EVERY == 0:
                self.stats.malformed = reader.stats.malformed
                if self.speed is None:
                    await asyncio.sleep(0)
            yield event, offset
        self.stats.malformed = reader.stats.malformed
