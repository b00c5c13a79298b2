"""Per-connection evidence from forwarded TCP flows: which connections the destination closed right after setup.

A sidecar that refuses a connection (Istio's RBAC filter, or a STRICT mTLS listener handed plaintext) lets
the TCP handshake complete, then closes or resets the connection within milliseconds. Hubble shows every
packet of that as FORWARDED. This tracker follows TCP connections by their 5-tuple and counts, per
(initiator workload, responder workload, port), the attempts and how each ended, plus the HTTP 403
responses L7 flows carry. It knows nothing of policy: it only says what the packets did.

Cheap enough for the live path: each flow costs a few dict operations; the open-connection table only holds
connections younger than a few seconds (older ones are settled in arrival order) and has a hard cap; the
group table is least-recently-used with a cap. Both count what they evicted.

Hubble reports one packet at several observation points (leaving one node, arriving at the other, to the
proxy...), so every transition is idempotent: a second SYN of an open connection is the same SYN.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import NamedTuple

from hubbletui.flows.conn import Conn, Port, is_reply
from hubbletui.flows.model import Endpoint, Flow

QUICK_CLOSE_WINDOW_NS = 50_000_000  # "right after setup": the destination closed within 50 ms of its SYN-ACK
SETTLE_AFTER_NS = 5_000_000_000  # a connection older than this has shown what it will show (SYN retries: 1 s, 3 s)
MAX_CONNECTIONS = 20_000
MAX_GROUPS = 5_000
MAX_SAMPLES = 5
_PASSED = frozenset({"FORWARDED", "REDIRECTED"})  # REDIRECTED: to Cilium's own L7 proxy, still delivered


class QuickClose(NamedTuple):
    """One connection the destination ended right after setup."""

    time_ns: int
    source_port: int
    delay_ns: int  # from the SYN-ACK to the destination's FIN or RST
    flag: str  # "RST" or "FIN"
    after_data: bool  # the destination had sent data first (e.g. the server half of a TLS handshake)


class Http403(NamedTuple):
    time_ns: int
    method: str
    url: str


@dataclass(frozen=True)
class Evidence:
    """A frozen copy of what one group's packets showed, for reports and JSON."""

    attempts: int = 0
    handshakes: int = 0
    quick_closes: int = 0
    quick_resets: int = 0
    silent_closes: int = 0  # quick closes before any data from the destination
    reset_at_connect: int = 0  # answered RST instead of SYN-ACK: nothing listens (not a sidecar's doing)
    carried_on: int = 0  # handshaken connections the destination did not end right after setup
    http_flows: int = 0  # L7 HTTP records (requests and responses)
    http_403: int = 0
    first_ns: int = 0
    last_ns: int = 0
    closes: tuple[QuickClose, ...] = ()
    forbidden: tuple[Http403, ...] = ()

    @property
    def last_refused_ns(self) -> int:
        """When the latest refusal was seen (a quick close or a 403), else the group's last flow."""
        times = [c.time_ns for c in self.closes] + [f.time_ns for f in self.forbidden]
        return max(times) if times else self.last_ns

    @property
    def refusal_seen(self) -> bool:
        """The packets look like a refusal: quick closes or 403 answers."""
        return self.quick_closes > 0 or self.http_403 > 0

    def lines(self) -> tuple[str, ...]:
        """The evidence in words, one fact a line."""
        out = []
        if self.attempts:
            out.append(f"{self.attempts} connection attempt{_s(self.attempts)}, {self.handshakes} completed the "
                       "TCP handshake")
        if self.quick_closes:
            fins = self.quick_closes - self.quick_resets
            how = ", ".join(p for p in (f"{self.quick_resets} RST" if self.quick_resets else "",
                                        f"{fins} FIN" if fins else "") if p)
            if self.silent_closes == self.quick_closes:
                data = "before any data from the destination"
            elif not self.silent_closes:
                data = "after the destination had sent some data, such as its half of a TLS handshake"
            else:
                data = f"{self.silent_closes} before any data from the destination"
            delays = sorted(c.delay_ns for c in self.closes)
            when = ""
            if delays:
                span = _ms(delays[0]) if delays[0] == delays[-1] else f"{_ms(delays[0])} to {_ms(delays[-1])}"
                when = f"; {span} after the SYN-ACK (latest {len(delays)})"
            out.append(f"{self.quick_closes} closed by the destination right after the handshake ({how}; {data}"
                       f"{when})")
        if self.http_403:
            sample = self.forbidden[-1] if self.forbidden else None
            out.append(f"{self.http_403} HTTP response{_s(self.http_403)} 403 Forbidden"
                       + (f" (latest: {sample.method} {sample.url})" if sample else ""))
        if self.reset_at_connect:
            out.append(f"{self.reset_at_connect} answered with RST instead of SYN-ACK (nothing listening)")
        if self.carried_on:
            out.append(f"{self.carried_on} connection{_s(self.carried_on)} carried on past the handshake")
        return tuple(out)

    def to_dict(self) -> dict:
        return {
            "attempts": self.attempts, "handshakes": self.handshakes, "quick_closes": self.quick_closes,
            "quick_resets": self.quick_resets, "silent_closes": self.silent_closes,
            "reset_at_connect": self.reset_at_connect, "carried_on": self.carried_on,
            "http_flows": self.http_flows, "http_403": self.http_403,
            "first_ns": self.first_ns, "last_ns": self.last_ns,
            "closes": [c._asdict() for c in self.closes], "forbidden": [r._asdict() for r in self.forbidden],
            "lines": list(self.lines()),
        }


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.1f} ms" if ns < 10_000_000 else f"{ns // 1_000_000} ms"


class GroupStats:
    """The running counts of one group; `freeze()` gives the Evidence."""

    __slots__ = ("attempts", "carried_on", "closes", "destination", "first_ns", "flows", "forbidden", "handshakes",
                 "http_403", "http_flows", "key", "last_ns", "quick_closes", "quick_resets", "reset_at_connect",
                 "silent_closes", "source")

    def __init__(self, key: Conn, source: Endpoint, destination: Endpoint, time_ns: int):
        self.key = key
        self.source = source  # the initiator and responder as the latest flow named them
        self.destination = destination
        self.flows = 0
        self.attempts = self.handshakes = self.quick_closes = self.quick_resets = self.silent_closes = 0
        self.reset_at_connect = self.carried_on = self.http_flows = self.http_403 = 0
        self.first_ns = self.last_ns = time_ns
        self.closes: deque[QuickClose] = deque(maxlen=MAX_SAMPLES)
        self.forbidden: deque[Http403] = deque(maxlen=MAX_SAMPLES)

    @property
    def http_seen(self) -> bool:
        """Cilium's L7 proxy parsed HTTP on this port: the destination speaks HTTP."""
        return self.http_flows > 0

    def freeze(self) -> Evidence:
        return Evidence(self.attempts, self.handshakes, self.quick_closes, self.quick_resets, self.silent_closes,
                        self.reset_at_connect, self.carried_on, self.http_flows, self.http_403, self.first_ns,
                        self.last_ns, tuple(self.closes), tuple(self.forbidden))


class _Conn:
    """One TCP connection being watched, keyed by (client ip, client port, server ip, server port)."""

    __slots__ = ("done", "group", "server_data", "syn_ns", "synack_ns")

    def __init__(self, group: GroupStats, syn_ns: int):
        self.group = group
        self.syn_ns = syn_ns
        self.synack_ns = 0
        self.server_data = False
        self.done = False  # its outcome is counted; later packets of it change nothing


@dataclass
class TrackerStats:
    flows: int = 0  # passed TCP flows looked at
    connections_evicted: int = 0  # open connections pushed out at the cap before they showed their outcome
    groups_evicted: int = 0
    groups_evicted_attempts: int = 0  # the attempts those groups had counted


@dataclass
class ConnectionTracker:
    window_ns: int = QUICK_CLOSE_WINDOW_NS
    max_connections: int = MAX_CONNECTIONS
    max_groups: int = MAX_GROUPS
    settle_after_ns: int = SETTLE_AFTER_NS
    stats: TrackerStats = field(default_factory=TrackerStats)
    latest_ns: int = 0  # newest flow time seen: the tracker's clock

    def __post_init__(self) -> None:
        self._conns: OrderedDict[tuple, _Conn] = OrderedDict()  # oldest first
        self._groups: OrderedDict[Conn, GroupStats] = OrderedDict()  # least recently seen first
        self._settled_at = -1

    # ------------------------------------------------------------------------------------------------ input

    def observe(self, flow: Flow) -> None:
        if flow.protocol != "TCP" or flow.verdict not in _PASSED:
            return
        self.stats.flows += 1
        t = flow.time_ns
        self.latest_ns = max(self.latest_ns, t)
        flags = flow.tcp_flags
        l7 = flow.l7
        syn, ack = "SYN" in flags, "ACK" in flags
        reply = is_reply(flow)
        if l7 is not None:
            group = self._group(flow, reply)
            if l7.protocol == "http":
                group.http_flows += 1
                if l7.type == "RESPONSE" and l7.code == 403:
                    group.http_403 += 1
                    group.forbidden.append(Http403(t, l7.method, l7.target))
            return
        if not flags:  # an exporter that leaves flags out: the group exists, its connections cannot be followed
            self._group(flow, reply)
            return
        if reply:
            key = (flow.destination.ip, flow.dst_port, flow.source.ip, flow.src_port)
        else:
            key = (flow.source.ip, flow.src_port, flow.destination.ip, flow.dst_port)
        conn = self._conns.get(key)

        if syn and not ack:
            if conn is None or (conn.done and t - conn.syn_ns > self.settle_after_ns):
                self._open(key, self._group(flow, False), t)
            return
        if not reply:
            if conn is not None and not conn.done and ("FIN" in flags or "RST" in flags):
                conn.done = True  # the client ended it first: not the destination's refusal
                if conn.synack_ns:
                    conn.group.carried_on += 1
            return
        if syn:  # SYN-ACK
            if conn is None:  # its SYN was not seen (a capture that began mid-handshake)
                conn = self._open(key, self._group(flow, True), t)
            if not conn.synack_ns:
                conn.synack_ns = t
                conn.group.handshakes += 1
            return
        if conn is None or conn.done:
            return
        if "PSH" in flags:
            conn.server_data = True  # (a FIN may carry the last data: it is not a silent close)
        if "RST" in flags or "FIN" in flags:
            conn.done = True
            group = conn.group
            if not conn.synack_ns:
                if "RST" in flags:
                    group.reset_at_connect += 1
                return
            delay = t - conn.synack_ns
            if delay <= self.window_ns:
                flag = "RST" if "RST" in flags else "FIN"
                group.quick_closes += 1
                if flag == "RST":
                    group.quick_resets += 1
                if not conn.server_data:
                    group.silent_closes += 1
                group.closes.append(QuickClose(t, key[1], delay, flag, conn.server_data))
            else:
                group.carried_on += 1

    def _open(self, key: tuple, group: GroupStats, t: int) -> _Conn:
        conns = self._conns
        conn = conns[key] = _Conn(group, t)
        conns.move_to_end(key)
        group.attempts += 1
        if len(conns) > self.max_connections:
            _, old = conns.popitem(last=False)
            if not old.done:
                self.stats.connections_evicted += 1
        self._settle_oldest(t)
        return conn

    def _settle_oldest(self, now_ns: int) -> None:
        """Settle connections old enough to have shown their outcome: two at most per call, so the cost per
        flow stays constant while the table still drains faster than SYNs fill it."""
        conns = self._conns
        for _ in range(2):
            if not conns:
                return
            key, conn = next(iter(conns.items()))
            if now_ns - conn.syn_ns <= self.settle_after_ns:
                return
            del conns[key]
            self._finish(conn)

    def _finish(self, conn: _Conn) -> None:
        if not conn.done:
            conn.done = True
            if conn.synack_ns:
                conn.group.carried_on += 1  # it outlived the window without the destination ending it

    def _group(self, flow: Flow, reply: bool) -> GroupStats:
        if reply:
            src, dst, port = flow.destination, flow.source, flow.src_port
        else:
            src, dst, port = flow.source, flow.destination, flow.dst_port
        key = Conn(src.workload_ref, dst.workload_ref, Port(port, "TCP"))
        groups = self._groups
        group = groups.get(key)
        t = flow.time_ns
        if group is None:
            group = groups[key] = GroupStats(key, src, dst, t)
            if len(groups) > self.max_groups:
                _, old = groups.popitem(last=False)
                self.stats.groups_evicted += 1
                self.stats.groups_evicted_attempts += old.attempts
        else:
            groups.move_to_end(key)
            if not reply:
                group.source, group.destination = src, dst
        group.flows += 1
        if t > group.last_ns:
            group.last_ns = t
        elif t < group.first_ns:
            group.first_ns = t
        return group

    # ------------------------------------------------------------------------------------------------ output

    def settle(self) -> None:
        """Count as "carried on" every open connection whose window has passed by the newest flow time (for a
        report at the end of a recording, or before listing groups)."""
        now = self.latest_ns
        if now == self._settled_at:
            return  # nothing new since the last call
        self._settled_at = now
        for key in [k for k, c in self._conns.items() if not c.done and c.synack_ns
                    and now - c.synack_ns > self.window_ns]:
            self._finish(self._conns[key])

    def groups(self) -> list[GroupStats]:
        return list(self._groups.values())

    def group(self, key: Conn) -> GroupStats | None:
        return self._groups.get(key)

    @property
    def open_connections(self) -> int:
        return len(self._conns)
