"""From a flow source to the UI without per-event messages: a bounded buffer filled by a worker thread.

The source is iterated inside the worker thread's own event loop, so a gRPC source creates its channel in the
loop that uses it and its decoding never runs on the UI's loop. Events are handed over in batches (one lock
per batch, at least every HAND_OVER_S), and the UI drains the buffer on a timer. When the UI falls behind, the
oldest events go and `dropped` counts them. Source states (connecting, retrying, ...) bypass the buffer: only
the latest matters and it must never be dropped.

The mesh-refusal detector (issue 7) watches every flow in this thread too, before the buffer, so what the
buffer drops still counts as evidence; once a second its findings are handed over like a source state.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from hubbletui.errors import HubbleTuiError
from hubbletui.flows.model import Event, Flow
from hubbletui.sources.base import ENDED, FAILED, FlowSource, SourceState

if TYPE_CHECKING:  # annotations only: these are imported where first needed, not at start-up
    from hubbletui.diagnose.mesh_refusals import MeshRefusal, MeshRefusalDetector

BUFFER_SIZE = 100_000
BATCH = 256  # events handed over at once ...
HAND_OVER_S = 0.02  # ... or after this long, whichever comes first
DETECT_EVERY_S = 1.0


class FeedBuffer:
    def __init__(self, capacity: int = BUFFER_SIZE):
        self.capacity = capacity
        self.received = 0  # events put in all
        self.dropped = 0  # events pushed out unread because the buffer was full
        self.state: SourceState | None = None
        self.states_seen = 0
        self.refusals: list[MeshRefusal] = []  # the detector's latest findings
        self.refusals_seen = 0
        self._events: deque[Event] = deque()
        self._lock = threading.Lock()

    def put(self, event: Event) -> None:
        self.put_many((event,))

    def put_many(self, events: list[Event] | tuple[Event, ...]) -> None:
        with self._lock:
            queue = self._events
            queue.extend(events)
            self.received += len(events)
            over = len(queue) - self.capacity
            if over > 0:
                for _ in range(over):
                    queue.popleft()
                self.dropped += over

    def put_state(self, state: SourceState) -> None:
        self.state = state
        self.states_seen += 1

    def put_refusals(self, found: list[MeshRefusal]) -> None:
        self.refusals = found
        self.refusals_seen += 1

    def drain(self, limit: int) -> list[Event]:
        """Take up to ``limit`` of the oldest buffered events."""
        with self._lock:
            events = self._events
            if len(events) <= limit:
                self._events = deque()
                return list(events)
            return [events.popleft() for _ in range(limit)]

    def __len__(self) -> int:
        return len(self._events)


class Reports:
    """One-line reports a source makes while the TUI owns the terminal (a malformed line, ...): kept for the
    app to show, since printing them would scribble over the screen. Called from the source's thread."""

    def __init__(self, keep: int = 100):
        self.count = 0
        self._items: deque[str] = deque(maxlen=keep)

    def __call__(self, message: str) -> None:
        self._items.append(message)
        self.count += 1

    def latest(self) -> str:
        return self._items[-1] if self._items else ""


def run_source(source: FlowSource, buffer: FeedBuffer, cancelled: Callable[[], bool],
               detector: MeshRefusalDetector | None = None) -> None:
    """Iterate ``source`` into ``buffer`` until it ends or ``cancelled()`` turns true (run this in a thread).

    ``detector``: a MeshRefusalDetector (or None): fed every flow, asked for refusals once a second.
    """
    asyncio.run(_Feeder(source, buffer, detector).run(cancelled))


class _Feeder:
    def __init__(self, source: FlowSource, buffer: FeedBuffer, detector: MeshRefusalDetector | None):
        self.source, self.buffer, self.detector = source, buffer, detector
        self.pending: list[Event] = []  # read, not yet handed over (touched only by this thread's loop)

    def hand_over(self) -> None:
        if self.pending:
            batch, self.pending = self.pending, []
            self.buffer.put_many(batch)

    async def run(self, cancelled: Callable[[], bool]) -> None:
        reader = asyncio.create_task(self._read())
        loop = asyncio.get_running_loop()
        next_detect = loop.time() + DETECT_EVERY_S
        while not reader.done():
            if cancelled():
                reader.cancel()
                break
            await asyncio.wait({reader}, timeout=HAND_OVER_S)
            self.hand_over()
            if self.detector is not None and loop.time() >= next_detect:
                self.buffer.put_refusals(self.detector.refusals())
                next_detect = loop.time() + DETECT_EVERY_S
        try:
            await reader
        except asyncio.CancelledError:
            pass
        self.hand_over()
        if self.detector is not None and not cancelled():
            self.buffer.put_refusals(self.detector.refusals())  # a finite source: the final word on what it held

    async def _read(self) -> None:
        buffer = self.buffer
        observe = self.detector.observe if self.detector is not None else None
        try:
            async for event in self.source.events():
                if isinstance(event, SourceState):
                    self.hand_over()  # what came before the state goes first
                    buffer.put_state(event)
                    continue
                if observe is not None and isinstance(event, Flow):
                    observe(event)
                self.pending.append(event)
                if len(self.pending) >= BATCH:
                    self.hand_over()
        except HubbleTuiError as exc:
            self.hand_over()
            buffer.put_state(SourceState(FAILED, str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - a broken source must show in the status bar, not kill the UI
            self.hand_over()
            buffer.put_state(SourceState(FAILED, f"{type(exc).__name__}: {exc}"))
            return
        self.hand_over()
        if buffer.state is None or buffer.state.state not in (ENDED, FAILED):
            buffer.put_state(SourceState(ENDED, "the source has no more flows"))
