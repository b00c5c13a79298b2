"""A FlowSource consumed from plain blocking code (the headless CLI commands), one batch per loop run.

The source's async generator runs in a task that fills a bounded queue; each step of the iterator runs the
loop until at least one item is there and takes everything that is. While the caller prints, the loop is
paused and gRPC keeps receiving into its own buffers, so the cost of the hand-over is per batch, not per flow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

from hubbletui.flows.model import Event
from hubbletui.sources.base import FlowSource, SourceState

QUEUE_SIZE = 4096
_DONE = object()


def iterate_blocking(source: FlowSource, on_state: Callable[[SourceState], None]) -> Iterator[Event]:
    """The events of ``source``; each SourceState goes to ``on_state`` (which may raise to stop)."""
    runner = asyncio.Runner()
    queue: asyncio.Queue | None = None
    producer: asyncio.Task | None = None

    async def produce() -> None:
        events = source.events()
        try:
            async for item in events:
                await queue.put(item)
        except Exception:
            await queue.put(_DONE)
            raise
        finally:
            await events.aclose()  # closes the connection now, also when cancelled
        await queue.put(_DONE)

    async def next_batch() -> list:
        nonlocal queue, producer
        if producer is None:
            queue = asyncio.Queue(QUEUE_SIZE)
            producer = asyncio.create_task(produce())
        batch = [await queue.get()]
        while not queue.empty() and batch[-1] is not _DONE:
            batch.append(queue.get_nowait())
        return batch

    async def stop() -> None:
        if producer is not None and not producer.done():
            producer.cancel()
            try:
                await producer
            except asyncio.CancelledError:
                pass
        if producer is not None and producer.done() and not producer.cancelled():
            producer.result()  # re-raise what the source raised

    try:
        while True:
            for item in runner.run(next_batch()):
                if item is _DONE:
                    return
                if isinstance(item, SourceState):
                    on_state(item)
                else:
                    yield item
    finally:
        try:
            runner.run(stop())
        finally:
            runner.close()
