"""A recording prepared once for serving: every event decoded (to filter on) and encoded (to send).

Streaming then costs no encoding per flow: a stream sends the stored bytes. Only looped passes (whose
times move) and field-masked requests build a message per flow.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from google.protobuf import json_format

from hubbletui.errors import HubbleTuiError
from hubbletui.flows.decode import raw_json, raw_message
from hubbletui.flows.model import Event, Flow
from hubbletui.flows.recording import RecordingReader
from hubbletui.proto.observer import observer_pb2
from hubbletui.server.from_json import response_from_dict
from hubbletui.flows.replay_time import loop_period_ns, play_offsets


def response_message(event: Event) -> observer_pb2.GetFlowsResponse:
    """The GetFlowsResponse an event came from (decoded from JSON, or the message itself)."""
    obj = raw_json(event)
    return raw_message(event) if obj is None else response_from_dict(obj)


@dataclass
class Playlist:
    name: str
    events: list[Event]
    payloads: list[bytes]
    offsets: list[int]  # ns after the first event at which each plays (see flows/replay_time.py)
    flow_prefix: list[int]  # flow_prefix[j]: how many flows among events[:j]
    node_flows: dict[str, list[int]]  # node name -> indices of its flows

    @classmethod
    def from_events(cls, events: Iterable[Event], name: str = "events",
                    report: Callable[[str], None] | None = None) -> Playlist:
        kept: list[Event] = []
        payloads: list[bytes] = []
        for event in events:
            try:
                payloads.append(response_message(event).SerializeToString())
            except (json_format.ParseError, ValueError, TypeError) as exc:
                if report is not None:
                    report(f"{name}: event at {event.time_ns} cannot be served: {exc}; skipped")
                continue
            kept.append(event)
        prefix = [0]
        node_flows: dict[str, list[int]] = {}
        for j, event in enumerate(kept):
            is_flow = type(event) is Flow
            prefix.append(prefix[-1] + is_flow)
            if is_flow and event.node:
                node_flows.setdefault(event.node, []).append(j)
        return cls(name, kept, payloads, play_offsets(kept), prefix, node_flows)

    @classmethod
    def load(cls, path: str | os.PathLike, report: Callable[[str], None]) -> Playlist:
        reader = RecordingReader(path, report)
        playlist = cls.from_events(reader, reader.name, report)
        if not playlist.events:
            raise HubbleTuiError(f"{reader.name}: no events to serve")
        return playlist

    def __len__(self) -> int:
        return len(self.events)

    @property
    def flow_count(self) -> int:
        return self.flow_prefix[-1]

    @property
    def period_ns(self) -> int:
        return loop_period_ns(self.offsets)

    def flows_before(self, i: int) -> int:
        """Flows among the first ``i`` events played (``i`` counts across loop passes)."""
        passes, j = divmod(i, len(self.events))
        return passes * self.flow_count + self.flow_prefix[j]

    def node_flows_before(self, node: str, i: int) -> int:
        indices = self.node_flows[node]
        passes, j = divmod(i, len(self.events))
        return passes * len(indices) + bisect_left(indices, j)
