"""Which nodes a replay server reports, and in which state, at any point of the playback.

A recording made through Relay carries Relay's own word on its nodes (node_status events: a node connected,
became unavailable, went away). The server reports those states as they play, as Relay reports what its
peer manager knows: a node seen in flows is connected from the start unless an event says otherwise; a node
known only from node_status events appears when its first event plays; NODE_GONE removes a node. A looped
pass starts from the states the previous pass ended with.
"""

from __future__ import annotations

from hubbletui.flows.model import NodeStatus
from hubbletui.proto.relay import relay_pb2
from hubbletui.server.playlist import Playlist

CONNECTED = "NODE_CONNECTED"
GONE = "NODE_GONE"
_STATES = frozenset(relay_pb2.NodeState.keys()) - {"UNKNOWN_NODE_STATE"}  # what a status event may change to


class NodeBook:
    def __init__(self, playlist: Playlist):
        self.n = len(playlist)
        self.initial = {name: CONNECTED for name in playlist.node_flows}
        # (event index within a pass, state, node names), in play order
        self.changes = [(j, event.state, event.node_names) for j, event in enumerate(playlist.events)
                        if type(event) is NodeStatus and event.state in _STATES and event.node_names]
        self.after_pass = self._apply(dict(self.initial), self.n)

    def _apply(self, states: dict[str, str], upto: int) -> dict[str, str]:
        for j, state, names in self.changes:
            if j >= upto:
                break
            for name in names:
                if state == GONE:
                    states.pop(name, None)
                else:
                    states[name] = state
        return states

    def states(self, played: int) -> dict[str, str]:
        """Node name -> state (NODE_CONNECTED, NODE_UNAVAILABLE, NODE_ERROR) once ``played`` events have played."""
        if not self.n:
            return {}
        passes, j = divmod(played, self.n)
        if passes and not j:
            return dict(self.after_pass)
        return self._apply(dict(self.after_pass if passes else self.initial), j)
