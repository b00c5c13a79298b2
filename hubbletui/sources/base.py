"""The one interface every flow source offers the rest of the program.

A source is an async iterable of events: Flow, NodeStatus and LostEvents as Hubble sends them, plus
SourceState whenever the source's own condition changes (connecting, streaming, retrying in N s, failed,
ended). Front ends render states; they never ask a source how it is doing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from hubbletui.flows.model import Event

# SourceState.state values
CONNECTING = "connecting"
STREAMING = "streaming"
RETRYING = "retrying"
FAILED = "failed"  # gave up: the message says why
ENDED = "ended"  # a finite source (a recording, a non-follow request) delivered everything
PAUSED = "paused"


@dataclass(frozen=True)
class SourceState:
    state: str
    detail: str = ""  # "retrying in 2.3 s: UNAVAILABLE: connection refused", the address, ...
    retry_in: float | None = None
    reconnects: int = 0


@dataclass
class SourceStats:
    """Counters a status bar shows; sources update them as they go."""

    flows: int = 0
    node_events: int = 0
    lost_events: int = 0  # events Hubble reported lost (sum of num_events_lost)
    duplicates_dropped: int = 0  # overlap removed after a resume
    reconnects: int = 0
    malformed: int = 0  # messages that are not well-formed flows (oversized ones included), skipped
    oversized: int = 0  # of those, messages over the size limit
    first_malformed: str = ""  # why the first one was refused, for a report
    unavailable_nodes: set[str] = field(default_factory=set)


@runtime_checkable
class FlowSource(Protocol):
    stats: SourceStats

    def describe(self) -> str:
        """A short human name: 'relay localhost:4245', 'recording flows.json (10x)'."""

    def events(self) -> AsyncIterator[Event | SourceState]:
        """Stream events until the source ends, fails, or the consumer stops iterating."""
