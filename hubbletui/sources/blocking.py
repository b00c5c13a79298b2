"""A FlowSource consumed from plain blocking code (the headless CLI commands), the loop run once per batch.

The source's async generator runs as a task that appends to a list. Each step of the iterator runs the loop
until a batch is there: BATCH items, or whatever arrived within LINGER seconds of the first one (so a slow
live stream is still printed promptly). While the caller prints, the loop is paused and gRPC keeps receiving
into its own buffers, so the hand-over costs per batch, not per flow.

The loop is driven with ``run_until_complete`` on a loop of our own, not ``asyncio.Runner.run``: the Runner
installs and removes a SIGINT handler on every call, which at one call per batch was a fifth of the time.
Ctrl-C is then an ordinary KeyboardInterrupt in the caller's thread, and the source is closed on the way out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

from hubbletui.flows.model import Event
from hubbletui.sources.base import FlowSource, SourceState

BATCH = 512  # items handed over per loop run at most (the producer pauses beyond BUFFER_MAX)
BUFFER_MAX = 8192  # items held ahead of the consumer before the producer waits
LINGER = 0.005  # seconds to wait for a batch to fill once its first item is in


class _Hand:
    """The producer's buffer and the futures either side waits on."""

    __slots__ = ("items", "done", "error", "want", "need", "room")

    def __init__(self) -> None:
        self.items: list = []
        self.done = False
        self.error: BaseException | None = None
        self.want: asyncio.Future | None = None  # the consumer waits for ``need`` items
        self.need = 1
        self.room: asyncio.Future | None = None  # the producer waits for the consumer to take some


def iterate_blocking(source: FlowSource, on_state: Callable[[SourceState], None]) -> Iterator[Event]:
    """The events of ``source``; each SourceState goes to ``on_state`` (which may raise to stop)."""
    loop = asyncio.new_event_loop()
    hand = _Hand()
    producer: asyncio.Task | None = None

    def wake(fut_name: str) -> None:
        fut = getattr(hand, fut_name)
        if fut is not None and not fut.done():
            fut.set_result(None)
        setattr(hand, fut_name, None)

    async def produce() -> None:
        events = source.events()
        items = hand.items
        try:
            async for item in events:
                items.append(item)
                if hand.want is not None and (len(items) >= hand.need or isinstance(item, SourceState)):
                    wake("want")
                if len(items) >= BUFFER_MAX:
                    hand.room = loop.create_future()
                    await hand.room
        except Exception as exc:  # handed to the consumer, raised there
            hand.error = exc
        finally:
            hand.done = True
            wake("want")
            await events.aclose()  # closes the connection now, also when cancelled

    async def next_batch() -> list:
        nonlocal producer
        if producer is None:
            producer = loop.create_task(produce())
        if not hand.items and not hand.done:
            hand.want, hand.need = loop.create_future(), 1
            await hand.want
        if hand.items and not hand.done and len(hand.items) < BATCH and not isinstance(hand.items[-1], SourceState):
            hand.want, hand.need = loop.create_future(), BATCH
            try:
                await asyncio.wait_for(hand.want, LINGER)
            except asyncio.TimeoutError:
                pass
        batch = hand.items[:]
        hand.items.clear()
        wake("room")
        return batch

    async def stop() -> None:
        if producer is not None and not producer.done():
            producer.cancel()
            try:
                await producer
            except asyncio.CancelledError:
                pass

    try:
        while True:
            batch = loop.run_until_complete(next_batch())
            for item in batch:
                if isinstance(item, SourceState):
                    on_state(item)
                else:
                    yield item
            if not batch and hand.done:
                if hand.error is not None:
                    raise hand.error
                return
    finally:
        try:
            loop.run_until_complete(stop())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
