"""A FlowSource over a list: what tests and benchmarks feed the rest of the program.

It is real code with the real contract (SourceState first, stats kept, ENDED at the end), only its events
come from memory. SourceState items in the list are passed through, so a test can script a connection's
life (connecting, retrying, streaming again) between its flows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

from hubbletui.flows.model import Event
from hubbletui.sources.base import ENDED, RETRYING, STREAMING, SourceState, SourceStats
from hubbletui.sources.tally import tally

YIELD_EVERY = 256


class FakeSource:
    """``interval``: seconds between items (0: as fast as consumed, yielding to the loop now and then).
    ``follow``: after the last item stay open, as a live stream does, until the consumer stops."""

    def __init__(self, items: Iterable[Event | SourceState], *, name: str = "fake", interval: float = 0.0,
                 follow: bool = False):
        self.items = list(items)
        self.name = name
        self.interval = interval
        self.follow = follow
        self.stats = SourceStats()

    def describe(self) -> str:
        return self.name

    async def events(self) -> AsyncIterator[Event | SourceState]:
        yield SourceState(STREAMING, self.name)
        stats = self.stats
        for count, item in enumerate(self.items):
            if self.interval:
                await asyncio.sleep(self.interval)
            elif count % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            if isinstance(item, SourceState):
                if item.state == RETRYING:
                    stats.reconnects += 1
            else:
                tally(stats, item)
            yield item
        if self.follow:
            await asyncio.Event().wait()
        yield SourceState(ENDED, f"{stats.flows} flows")
