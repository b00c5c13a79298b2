"""observer.Observer over a Playback: GetFlows, ServerStatus, GetNodes, GetNamespaces.

GetFlows answers like a Hubble server: whitelist/blacklist (the same FlowFilter evaluation `observe` uses;
a filter field we cannot evaluate is refused with INVALID_ARGUMENT rather than ignored), since/until,
first/last `number`, `follow`, and `field_mask`. Like Relay it first says which nodes are connected (and which
are not: the recording's node_status events set each node's state, see node_states.py).
GetAgentEvents and GetDebugEvents are not in our proto, so gRPC answers them UNIMPLEMENTED, as Relay does.

All clients share one event loop: what a request filters (its backlog, then each batch a follow stream has
seen play) is filtered in a thread (offloop.py), so that however costly one client's filter, the others are
served and the server still stops on a signal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from hubbletui import __version__
from hubbletui.flows.filters import FilterError, compile_request
from hubbletui.flows.model import Flow
from hubbletui.proto.flow import flow_pb2
from hubbletui.proto.observer import observer_pb2
from hubbletui.proto.relay import relay_pb2
from hubbletui.server.node_states import CONNECTED, NodeBook
from hubbletui.server.offloop import filtered
from hubbletui.server.playback import Playback
from hubbletui.flows.replay_time import shift_message

SERVICE = "observer.Observer"
VERSION = f"{__version__}+hubbletui-replay"
_parse_response = observer_pb2.GetFlowsResponse.FromString
# a refusal quotes the client's value: a longer one would pass gRPC's default 8 KiB limit on the trailers
# that carry it, and the client would see a metadata error instead of the reason
MAX_DETAILS = 1000


def _bounded(details: str) -> str:
    return details if len(details) <= MAX_DETAILS else details[:MAX_DETAILS - 3] + "..."


class _Selection:
    """One GetFlows request's view of the playlist: which events it wants and the bytes to send for each."""

    def __init__(self, playback: Playback, request: observer_pb2.GetFlowsRequest):
        playlist = playback.playlist
        self.events, self.payloads, self.n = playlist.events, playlist.payloads, len(playlist)
        self.period = playlist.period_ns
        self.fields = compile_request(request.whitelist, request.blacklist) \
            if (request.whitelist or request.blacklist) else None
        self.since = request.since.ToNanoseconds() if request.HasField("since") else None
        self.until = request.until.ToNanoseconds() if request.HasField("until") else None
        self.mask = None
        if request.field_mask.paths:
            self.mask = FieldMask(paths=list(request.field_mask.paths))
            if not self.mask.IsValidForDescriptor(flow_pb2.Flow.DESCRIPTOR):
                raise FilterError(f"invalid field mask {list(request.field_mask.paths)}")
        # the common case (no filter, no mask, first pass) sends stored bytes untouched
        self.plain = self.fields is None and self.since is None and self.until is None and self.mask is None

    def time_of(self, i: int) -> int:
        passes, j = divmod(i, self.n)
        t = self.events[j].time_ns
        return t + passes * self.period if t else 0

    def wants(self, i: int) -> bool:
        if self.plain:
            return True
        event = self.events[i % self.n]
        t = self.time_of(i)
        if t and ((self.since is not None and t < self.since) or (self.until is not None and t > self.until)):
            return False
        return self.fields is None or type(event) is not Flow or self.fields(event)

    def payload(self, i: int) -> bytes:
        passes, j = divmod(i, self.n)
        if not passes and self.mask is None:
            return self.payloads[j]
        message = _parse_response(self.payloads[j])
        if passes:
            shift_message(message, passes * self.period)
        if self.mask is not None and message.HasField("flow"):
            kept = flow_pb2.Flow()
            self.mask.MergeMessage(message.flow, kept)
            message.flow.CopyFrom(kept)
        return message.SerializeToString()


def _first_or_last(indices: list[int], events: list, n: int, number: int, first: bool) -> list[int]:
    """The first or last ``number`` flows among ``indices``, with the status events between them."""
    chosen: list[int] = []
    flows = 0
    for i in (indices if first else reversed(indices)):
        if type(events[i % n]) is Flow:
            if flows == number:
                break
            flows += 1
        chosen.append(i)
    return chosen if first else chosen[::-1]


class ObserverService:
    def __init__(self, playback: Playback, *, name: str = "hubbletui-replay", tls: bool = False,
                 wall_clock: Callable[[], int] = time.time_ns):
        self.playback = playback
        self.name = name
        self.tls = tls
        self.wall_clock = wall_clock
        self.nodes = NodeBook(playback.playlist)

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(SERVICE, {
            # responses are stored serialized: the stream sends bytes as they are
            "GetFlows": grpc.unary_stream_rpc_method_handler(
                self.get_flows, request_deserializer=observer_pb2.GetFlowsRequest.FromString,
                response_serializer=None),
            "ServerStatus": grpc.unary_unary_rpc_method_handler(
                self.server_status, request_deserializer=observer_pb2.ServerStatusRequest.FromString,
                response_serializer=observer_pb2.ServerStatusResponse.SerializeToString),
            "GetNodes": grpc.unary_unary_rpc_method_handler(
                self.get_nodes, request_deserializer=observer_pb2.GetNodesRequest.FromString,
                response_serializer=observer_pb2.GetNodesResponse.SerializeToString),
            "GetNamespaces": grpc.unary_unary_rpc_method_handler(
                self.get_namespaces, request_deserializer=observer_pb2.GetNamespacesRequest.FromString,
                response_serializer=observer_pb2.GetNamespacesResponse.SerializeToString),
        })

    # -----------------------------------------------------------------------------------------------------

    def _greeting(self) -> list[bytes]:
        """What Relay says first on every stream: the nodes connected now, then those that are not."""
        by_state: dict[str, list[str]] = {}
        for name, state in sorted(self.nodes.states(self.playback.played()).items()):
            by_state.setdefault(state, []).append(name)
        out = []
        for state in sorted(by_state, key=lambda s: s != CONNECTED):
            message = observer_pb2.GetFlowsResponse(
                node_status=relay_pb2.NodeStatusEvent(state_change=relay_pb2.NodeState.Value(state),
                                                      node_names=by_state[state]),
                node_name=self.name)
            message.time.FromNanoseconds(self.wall_clock())
            out.append(message.SerializeToString())
        return out

    async def get_flows(self, request: observer_pb2.GetFlowsRequest, context) -> AsyncIterator[bytes]:
        if request.first and request.follow:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "first cannot be combined with follow")
        try:
            selection = _Selection(self.playback, request)
        except FilterError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, _bounded(str(exc)))
        for greeting in self._greeting():
            yield greeting
        playback = self.playback
        played = playback.played()
        number = request.number
        if request.follow and not number and selection.since is None:
            backlog: list[int] | range = []  # follow alone: only what plays from now on
        else:
            backlog = range(playback.buffer_start(played), played)
            if not selection.plain:
                backlog = await filtered(selection.wants, backlog)
            if number:
                backlog = _first_or_last(list(backlog), selection.events, selection.n, number, request.first)
        payload = selection.payload
        for i in backlog:
            yield payload(i)
        if not request.follow:
            return
        i = played
        until = selection.until
        while True:
            if not playback.loop and i >= playback.n:
                await asyncio.Event().wait()  # a finished recording: stay open, as a quiet live server does
            delay = playback.plays_at(i) - playback.clock.now()
            if delay > 0.001:
                await playback.clock.sleep(delay)
            # everything that has played by now, filtered off the loop in one go
            end = max(i + 1, playback.played())
            if not playback.loop:
                end = min(end, playback.n)
            batch = range(i, end)
            keep = batch if selection.plain else set(await filtered(selection.wants, batch))
            for j in batch:
                if until is not None and selection.time_of(j) > until:
                    return
                if j in keep:
                    yield payload(j)
            i = end

    async def server_status(self, request, context) -> observer_pb2.ServerStatusResponse:
        playback, playlist = self.playback, self.playback.playlist
        now = playback.clock.now()
        played = playback.played(now)
        seen = playlist.flows_before(played)
        # Hubble's flows_rate: flows per second over the last minute
        rate = (seen - playlist.flows_before(playback.played(now - 60.0))) / 60.0
        response = observer_pb2.ServerStatusResponse(
            num_flows=seen - playlist.flows_before(playback.buffer_start(played)),
            max_flows=playlist.flow_count, seen_flows=seen, uptime_ns=playback.uptime_ns(),
            version=VERSION, flows_rate=rate)
        states = self.nodes.states(played)
        unavailable = sorted(name for name, state in states.items() if state != CONNECTED)
        response.num_connected_nodes.value = len(states) - len(unavailable)
        response.num_unavailable_nodes.value = len(unavailable)
        response.unavailable_nodes.extend(unavailable)
        return response

    async def get_nodes(self, request, context) -> observer_pb2.GetNodesResponse:
        playback, playlist = self.playback, self.playback.playlist
        played = playback.played()
        start = playback.buffer_start(played)
        uptime = playback.uptime_ns()
        nodes = []
        for name, state in sorted(self.nodes.states(played).items()):
            node = observer_pb2.Node(name=name, state=relay_pb2.NodeState.Value(state))
            if state == CONNECTED:
                # Relay has figures only for the nodes it is connected to
                node.version, node.uptime_ns = VERSION, uptime
                node.tls.enabled = self.tls
                if name in playlist.node_flows:
                    seen = playlist.node_flows_before(name, played)
                    node.num_flows = seen - playlist.node_flows_before(name, start)
                    node.max_flows, node.seen_flows = len(playlist.node_flows[name]), seen
            nodes.append(node)
        return observer_pb2.GetNodesResponse(nodes=nodes)

    async def get_namespaces(self, request, context) -> observer_pb2.GetNamespacesResponse:
        playback, playlist = self.playback, self.playback.playlist
        played = playback.played()
        seen = set()
        for i in range(playback.buffer_start(played), played):
            event = playlist.events[i % len(playlist)]
            if type(event) is Flow:
                for ep in (event.source, event.destination):
                    if ep.namespace:
                        seen.add((ep.cluster, ep.namespace))
        return observer_pb2.GetNamespacesResponse(
            namespaces=[observer_pb2.Namespace(cluster=c, namespace=ns) for c, ns in sorted(seen)])
