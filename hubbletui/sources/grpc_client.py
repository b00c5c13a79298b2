"""Flows from a live Hubble server (Relay or one agent) over gRPC, surviving broken streams.

`GrpcSource.events()` connects, streams GetFlows, and when the stream breaks (relay restart, port-forward
gone, keepalive timeout, a server that ends a follow stream) it reconnects with exponential backoff and
jitter, asks again from the newest flow time it delivered, and drops the repeated overlap (see resume.py).
Every change of condition is reported as a SourceState; node_status and lost_events pass through, counted.

Filters are sent to the server, and checked again here: an older server skips filter fields it does not
know, which makes its answer wider than asked.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from hubbletui.sources import dial  # noqa: I001  (first: it quiets gRPC's C-core logging before grpc loads)
import grpc

from hubbletui.errors import HubbleTuiError
from hubbletui.flows.decode import DecodeError, event_from_bytes
from hubbletui.flows.enums import NODE_STATE_NAME
from hubbletui.flows.filters import FilterError
from hubbletui.flows.model import Event, Flow
from hubbletui.flows.request import FlowQuery
from hubbletui.flows.select import flow_matcher
from hubbletui.flows.timefmt import format_rfc3339_ns
from hubbletui.proto.observer import observer_pb2
from hubbletui.untrusted import printable
from hubbletui.sources.base import CONNECTING, ENDED, FAILED, RETRYING, STREAMING, SourceState, SourceStats
from hubbletui.sources.dial import ConnectFailed, DialOptions
from hubbletui.sources.resume import ResumeTracker
from hubbletui.sources.tally import tally

GET_FLOWS = "/observer.Observer/GetFlows"
SERVER_STATUS = "/observer.Observer/ServerStatus"
GET_NODES = "/observer.Observer/GetNodes"
ALL_FLOWS = 2**64 - 1  # what `hubble observe --all` asks for
UNARY_TIMEOUT = 12.0  # the hubble CLI's request timeout
MAX_FLOW_BYTES = 16 << 20  # a Hubble flow is a few KiB; a message over this is skipped and counted
STALL_TIMEOUT = 30.0  # one-shot requests: seconds without a message before the server is taken as stalled

# What compact and table output show, plus every field a client-side filter check reads (see flows/filters.py)
# and the uuid that identifies a flow on resume. Full flows are several times larger: policies, ethernet,
# interface, trace context, and on a busy relay the bytes, not the decoding, decide what keeps up.
DISPLAY_FIELD_MASK = (
    "time", "uuid", "verdict", "drop_reason", "drop_reason_desc", "IP", "l4", "l7", "source", "destination",
    "Type", "node_name", "source_names", "destination_names", "reply", "is_reply", "event_type",
    "source_service", "destination_service", "traffic_direction", "policy_match_type", "trace_observation_point",
)

# a broken connection or stream is worth retrying; a refusal of the request itself is not
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL,
                       grpc.StatusCode.UNKNOWN, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED,
                       grpc.StatusCode.CANCELLED, grpc.StatusCode.DATA_LOSS})


@dataclass(frozen=True)
class RetryPolicy:
    first_delay: float = 0.5
    max_delay: float = 30.0
    factor: float = 2.0
    jitter: float = 0.25  # each delay is scaled by a random factor in [1 - jitter, 1 + jitter]
    max_attempts: int | None = None  # consecutive failures before giving up; None: keep trying

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before attempt ``attempt`` (1 = the first retry)."""
        base = min(self.max_delay, self.first_delay * self.factor ** (attempt - 1))
        return base * rng.uniform(1 - self.jitter, 1 + self.jitter)


@dataclass(frozen=True)
class ServerStatus:
    num_flows: int
    max_flows: int
    seen_flows: int
    uptime_ns: int
    connected_nodes: int | None  # None: the server did not say (an agent, not a relay)
    unavailable_nodes: int | None
    unavailable_names: tuple[str, ...]
    version: str
    flows_rate: float


@dataclass(frozen=True)
class NodeInfo:
    name: str
    version: str
    address: str
    state: str
    tls: bool
    uptime_ns: int
    num_flows: int
    max_flows: int
    seen_flows: int


class GrpcSource:
    """A FlowSource over Hubble's Observer.GetFlows.

    ``fail_fast``: if the very first connection fails, end with FAILED instead of retrying (one-shot CLI use;
    the TUI keeps retrying and shows the countdown). ``failure`` then holds the error to raise.
    """

    def __init__(self, dial_options: DialOptions, query: FlowQuery | None = None, *,
                 retry: RetryPolicy = RetryPolicy(), fail_fast: bool = False, rng: random.Random | None = None,
                 stall_timeout: float | None = STALL_TIMEOUT):
        self.dial = dial_options
        # only a one-shot request can stall: a follow stream may be quiet for hours (keepalive finds dead ones)
        self.stall_timeout = stall_timeout
        self.query = query or FlowQuery(follow=True)
        self.retry = retry
        self.fail_fast = fail_fast
        self.stats = SourceStats()
        self.failure: HubbleTuiError | None = None
        self._tls = dial_options.check()  # bad flags and unreadable files fail here, before any connection
        self._rng = rng or random.Random()
        self._tracker = ResumeTracker()
        self._sent = 0  # flows the server sent (after removing repeats), for resuming a `first N` request
        self._connection: dial.Connection | None = None
        # --tls-allow-insecure trusts the certificate the first connection sees, and only that one
        self._pin = dial.CertificatePin() if dial_options.allow_insecure else None
        self._resumed_at: int | None = None
        self._received = [0, False]  # [messages received, handed to the consumer], read by the stall watch
        try:
            self._verify: Callable[[Flow], bool] | None = flow_matcher(self.query)
        except FilterError:
            self._verify = None  # a filter field we cannot evaluate: the server's word stands

    def describe(self) -> str:
        secure = " (TLS, unverified)" if self.dial.allow_insecure else " (TLS)" if self.dial.use_tls else ""
        return f"hubble {self.dial.address.text}{secure}"

    # -----------------------------------------------------------------------------------------------------
    # the stream

    def _request(self) -> observer_pb2.GetFlowsRequest | None:
        """The next GetFlowsRequest: the query as asked, or its continuation after a break (None: nothing left)."""
        q = self.query
        request = observer_pb2.GetFlowsRequest(follow=q.follow, whitelist=q.whitelist, blacklist=q.blacklist)
        if q.field_mask:
            request.field_mask.paths.extend(q.field_mask)
        if q.until_ns is not None:
            request.until.FromNanoseconds(q.until_ns)
        resume_at = self._resumed_at = self._tracker.resume()
        if resume_at is None:
            since, number, first = q.since_ns, q.number or 0, q.first
            if not number and not q.follow and since is None:
                number = ALL_FLOWS
        elif q.number and not q.follow:
            remaining = q.number - self._sent
            if remaining <= 0:
                return None
            # `since` is inclusive: the flows at the boundary come again and count against `number`
            since, number, first = resume_at, remaining + self._tracker.at_boundary, True
        else:
            since, number, first = resume_at, 0, False
        if since is not None:
            request.since.FromNanoseconds(since)
        request.number = number
        request.first = first
        return request

    async def events(self) -> AsyncIterator[Event | SourceState]:
        stats, tracker, verify = self.stats, self._tracker, self._verify
        address = self.dial.address.text
        failures = 0
        connected_once = False
        exhausted_at = None
        watch = None
        while True:
            yield SourceState(CONNECTING, address, reconnects=stats.reconnects)
            reason = ""
            try:
                request = self._request()
                if request is None:
                    yield SourceState(ENDED, f"{stats.flows} flows", reconnects=stats.reconnects)
                    return
                self._connection = await dial.open_channel(self.dial, self._tls, self._pin)
                connected_once = True
                call = self._connection.channel.unary_stream(GET_FLOWS, request_serializer=_serialize,
                                                  response_deserializer=None)(request)
                resumed = self._resumed_at
                detail = f"{address}, resumed at {format_rfc3339_ns(resumed)}" if resumed is not None else address
                yield SourceState(STREAMING, detail, reconnects=stats.reconnects)
                boundary = tracker.boundary_ns
                watch = self._watch_stall(call) if self.stall_timeout and not self.query.follow else None
                received = self._received
                async for data in call:
                    received[0] += 1
                    failures = 0  # only a stream that delivers resets the backoff, not a mere connection
                    if len(data) > MAX_FLOW_BYTES:
                        stats.oversized += 1
                        self._malformed(f"a message of {len(data):,} bytes, over the {MAX_FLOW_BYTES >> 20} MiB "
                                        "a flow may take")
                        continue
                    try:
                        event = event_from_bytes(data)
                    except (DecodeError, ValueError, TypeError, OverflowError) as exc:
                        self._malformed(str(exc))
                        continue
                    if type(event) is Flow:
                        if event.time_ns <= boundary and tracker.is_repeat(event):
                            stats.duplicates_dropped += 1
                            continue
                        tracker.delivered(event)
                        self._sent += 1
                        if verify is not None and not verify(event):
                            continue
                        stats.flows += 1
                    elif event is None:
                        continue
                    else:
                        tally(stats, event)
                    received[1] = True  # the consumer has it: time spent there is not the server's stall
                    yield event
                    received[1] = False
                if watch is not None and watch.stalled:
                    raise _Stalled()
                if not self.query.follow or self.query.until_ns is not None:
                    # a follow request with `until` ends when the server has passed that time
                    yield SourceState(ENDED, f"{stats.flows} flows", reconnects=stats.reconnects)
                    return
                reason = "the server ended the stream"
            except ConnectFailed as exc:
                reason = str(exc)
                if isinstance(exc, dial.CertificateChanged):
                    self.failure = dial.unreachable(self.dial, reason)
                    yield SourceState(FAILED, str(self.failure), reconnects=stats.reconnects)
                    return
                if self.fail_fast and not connected_once:
                    self.failure = dial.unreachable(self.dial, reason)
                    yield SourceState(FAILED, str(self.failure), reconnects=stats.reconnects)
                    return
            except (_Stalled, asyncio.CancelledError, grpc.aio.AioRpcError) as exc:
                if watch is None or not watch.stalled:
                    if not isinstance(exc, grpc.aio.AioRpcError):
                        raise
                else:
                    # the watch cancelled the call: a one-shot request gets no answer, and waiting longer
                    # (or asking again) would leave a script hanging
                    self.failure = HubbleTuiError(
                        f"{address} sent nothing for {self.stall_timeout:g} s: the server stalled "
                        f"(after {stats.flows} flows; --stall-timeout sets how long to wait)")
                    yield SourceState(FAILED, str(self.failure), reconnects=stats.reconnects)
                    return
                reason = f"{exc.code().name}: {printable(exc.details() or '')}".rstrip(": ")
                if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    # a message over MAX_RECEIVE_BYTES: resuming meets it again, so once is a retry, twice
                    # at the same point (nothing delivered in between) is the end
                    point = (self._resumed_at, self._sent)
                    if exhausted_at == point:
                        self.failure = HubbleTuiError(
                            f"{address}: {reason}; it came again on resuming, so the stream cannot get past it")
                        yield SourceState(FAILED, str(self.failure), reconnects=stats.reconnects)
                        return
                    exhausted_at = (tracker.newest_ns, self._sent)
                if exc.code() not in RETRYABLE:
                    what = ("does not serve Hubble's Observer API" if exc.code() == grpc.StatusCode.UNIMPLEMENTED
                            else "refused the request")
                    self.failure = HubbleTuiError(f"{address} {what}: {reason}")
                    yield SourceState(FAILED, str(self.failure), reconnects=stats.reconnects)
                    return
            finally:
                if watch is not None:
                    watch.stop()
                    watch = None
                await self._close_channel()
            failures += 1
            if self.retry.max_attempts is not None and failures > self.retry.max_attempts:
                self.failure = dial.unreachable(self.dial, f"gave up after {failures} attempts: {reason}")
                yield SourceState(FAILED, str(self.failure), reconnects=stats.reconnects)
                return
            delay = self.retry.delay(failures, self._rng)
            stats.reconnects += 1
            yield SourceState(RETRYING, f"retrying in {delay:.1f} s: {reason}", retry_in=delay,
                              reconnects=stats.reconnects)
            await asyncio.sleep(delay)

    def _malformed(self, why: str) -> None:
        stats = self.stats
        stats.malformed += 1
        if not stats.first_malformed:
            stats.first_malformed = printable(why)

    def _watch_stall(self, call) -> _StallWatch:
        return _StallWatch(call, self._received, self.stall_timeout)

    async def _close_channel(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()

    def take_notices(self) -> list[str]:
        """What the front end should say once (an out-of-date certificate accepted), then forgets."""
        if self._pin is None or not self._pin.notices:
            return []
        notices, self._pin.notices = self._pin.notices, []
        return notices

    # -----------------------------------------------------------------------------------------------------
    # figures

    async def _unary(self, path: str, request, response_type):
        connection = self._connection
        own = connection is None
        if own:
            try:
                connection = await dial.open_channel(self.dial, self._tls, self._pin)
            except ConnectFailed as exc:
                raise dial.unreachable(self.dial, str(exc)) from None
        try:
            method = connection.channel.unary_unary(path, request_serializer=_serialize,
                                         response_deserializer=response_type.FromString)
            return await method(request, timeout=UNARY_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            raise HubbleTuiError(f"{path.rsplit('/', 1)[-1]} at {self.dial.address.text}: {exc.code().name}: "
                                 f"{printable(exc.details() or '')}") from None
        finally:
            if own:
                await connection.close()

    async def server_status(self) -> ServerStatus:
        r = await self._unary(SERVER_STATUS, observer_pb2.ServerStatusRequest(), observer_pb2.ServerStatusResponse)
        return ServerStatus(
            r.num_flows, r.max_flows, r.seen_flows, r.uptime_ns,
            r.num_connected_nodes.value if r.HasField("num_connected_nodes") else None,
            r.num_unavailable_nodes.value if r.HasField("num_unavailable_nodes") else None,
            tuple(r.unavailable_nodes), r.version, r.flows_rate)

    async def nodes(self) -> list[NodeInfo]:
        r = await self._unary(GET_NODES, observer_pb2.GetNodesRequest(), observer_pb2.GetNodesResponse)
        return [NodeInfo(n.name, n.version, n.address, NODE_STATE_NAME.get(n.state, str(n.state)), n.tls.enabled,
                         n.uptime_ns, n.num_flows, n.max_flows, n.seen_flows) for n in r.nodes]


class _Stalled(Exception):
    pass


class _StallWatch:
    """Cancels ``call`` when no message arrived for ``timeout`` seconds; costs nothing per message beyond the
    counter the stream loop bumps anyway."""

    def __init__(self, call, counter: list, timeout: float):
        self.stalled = False
        self._call, self._counter, self._timeout = call, counter, timeout
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        seen = -1
        step = min(self._timeout, 1.0)
        idle = 0.0
        while True:
            await asyncio.sleep(step)
            now = self._counter[0]
            idle = idle + step if now == seen and not self._counter[1] else 0.0
            seen = now
            if idle >= self._timeout:
                self.stalled = True
                self._call.cancel()
                return

    def stop(self) -> None:
        self._task.cancel()


def _serialize(message) -> bytes:
    return message.SerializeToString()
