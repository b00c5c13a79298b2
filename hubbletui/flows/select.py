"""Applying a FlowQuery to a finite sequence of events: filters, since/until, first N or last N.

Shared by `observe --input-file` and the replay server, which answer the same request the same way.
Status events (node_status, lost_events) are not flows: filters do not apply to them and they always pass.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

from hubbletui.flows.filters import compile_request
from hubbletui.flows.model import Event, Flow
from hubbletui.flows.request import FlowQuery


def flow_matcher(query: FlowQuery):
    """A predicate over flows for the filter and time-window part of ``query``."""
    match = compile_request(query.whitelist, query.blacklist)
    since, until = query.since_ns, query.until_ns
    if since is None and until is None:
        return match
    return lambda f: (since is None or f.time_ns >= since) and (until is None or f.time_ns <= until) and match(f)


def select(events: Iterable[Event], query: FlowQuery) -> Iterator[Event]:
    match = flow_matcher(query)
    matching = (e for e in events if not isinstance(e, Flow) or match(e))
    if not query.number:
        yield from matching
        return
    if query.first:
        count = 0
        for event in matching:
            yield event
            if isinstance(event, Flow):
                count += 1
                if count >= query.number:
                    return
        return
    # last N flows, and the status events among them
    window: deque[Event] = deque()
    flows = 0
    for event in matching:
        window.append(event)
        if isinstance(event, Flow):
            flows += 1
            while flows > query.number:
                if isinstance(window.popleft(), Flow):
                    flows -= 1
    yield from window
