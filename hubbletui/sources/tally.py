"""Keeping a source's SourceStats in step with the events it delivers (the same rules for every source)."""

from __future__ import annotations

from hubbletui.flows.model import Flow, LostEvents, NodeStatus
from hubbletui.sources.base import SourceStats

_DOWN = ("NODE_UNAVAILABLE", "NODE_ERROR")
_UP_OR_GONE = ("NODE_CONNECTED", "NODE_GONE")  # a node that left the cluster is no longer "unavailable"


def tally(stats: SourceStats, event) -> None:
    if type(event) is Flow:
        stats.flows += 1
    elif type(event) is NodeStatus:
        stats.node_events += 1
        if event.state in _DOWN:
            stats.unavailable_nodes.update(event.node_names)
        elif event.state in _UP_OR_GONE:
            stats.unavailable_nodes.difference_update(event.node_names)
    elif type(event) is LostEvents:
        stats.lost_events += event.num_lost
