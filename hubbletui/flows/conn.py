"""Connections as people name them: who opened it, to whom, on which port; and which end of a flow opened it.

Every layer groups flows by connection (the store's rows, the drop groups `explain` and `suggest` work on, the
mesh-refusal tracker, the traffic a fix must keep working), so the key and the orientation live here, once.
"""

from __future__ import annotations

from typing import NamedTuple

from hubbletui.flows.model import Endpoint, Flow

EPHEMERAL_START = 32768  # Linux's default ip_local_port_range: a packet from a low port to one at or above is a reply
L4_PROTOCOLS = ("TCP", "UDP", "SCTP")
# ICMP replies and the request types they answer (echo, timestamp, information, address mask; v6 echo)
_ICMP_REQUEST_OF_REPLY = {"ICMPv4": {0: 8, 14: 13, 16: 15, 18: 17}, "ICMPv6": {129: 128}}


class Port(NamedTuple):
    """A destination port with its protocol; for ICMP, ``number`` is the ICMP type (Hubble puts it there)."""

    number: int
    protocol: str  # TCP | UDP | SCTP | ICMPv4 | ICMPv6 | another IP protocol's name | "" (not said)

    @property
    def is_icmp(self) -> bool:
        return self.protocol.startswith("ICMP")

    @property
    def text(self) -> str:
        """"4500/TCP", "ICMPv4 type 8", "TCP" (no port), "-" (nothing known)."""
        if self.is_icmp:
            return f"{self.protocol} type {self.number}"
        if self.number:
            return f"{self.number}/{self.protocol or '?'}"
        return self.protocol or "-"

    def __str__(self) -> str:
        return self.text


class Conn(NamedTuple):
    """A connection: initiator and responder (workload refs: "ns/deployment", "ns/pod", "world", an IP) and the
    responder's port."""

    src: str
    dst: str
    port: Port

    @property
    def text(self) -> str:
        return f"{self.src} -> {self.dst} {self.port.text}"


class GroupKey(NamedTuple):
    """Flows of one connection with one outcome: a row of the store, a group of drops `explain` explains and
    `suggest` fixes, or a connection the mesh refused."""

    conn: Conn
    verdict: str  # DROPPED, FORWARDED, ... (a mesh refusal: FORWARDED, with the refusal's reason)
    reason: str  # the drop reason name (POLICY_DENIED, ISTIO_AUTHZ_DENIED, ...), "" when none

    @property
    def src(self) -> str:
        return self.conn.src

    @property
    def dst(self) -> str:
        return self.conn.dst

    @property
    def port(self) -> Port:
        return self.conn.port

    def text(self) -> str:
        return f"{self.conn.text} ({self.reason or self.verdict})"

    def as_id(self) -> str:
        """A string form for widgets that key rows by strings (round-trips through `from_id`)."""
        return "\x1f".join((self.src, self.dst, str(self.port.number), self.port.protocol, self.verdict,
                            self.reason))

    @classmethod
    def from_id(cls, text: str) -> GroupKey:
        src, dst, number, protocol, verdict, reason = text.split("\x1f")
        return cls(Conn(src, dst, Port(int(number), protocol)), verdict, reason)


class Oriented(NamedTuple):
    """A flow turned into its connection: replies swap their ends back."""

    initiator: Endpoint
    responder: Endpoint
    port: Port
    reply: bool

    @property
    def conn(self) -> Conn:
        return Conn(self.initiator.workload_ref, self.responder.workload_ref, self.port)


def is_reply(flow: Flow) -> bool:
    """Did the responder send this packet? In order of trust: a SYN says it (SYN-ACK answers), then Hubble's
    `is_reply`, then an L7 response, then an ICMP reply type, then a low port talking to an ephemeral one."""
    flags = flow.tcp_flags
    if flags and "SYN" in flags:
        return "ACK" in flags
    if flow.is_reply is not None:
        return flow.is_reply
    if flow.l7 is not None and flow.l7.type == "RESPONSE":
        return True
    replies = _ICMP_REQUEST_OF_REPLY.get(flow.protocol)
    if replies is not None:
        return flow.dst_port in replies
    return flow.protocol in L4_PROTOCOLS and 0 < flow.src_port < EPHEMERAL_START <= flow.dst_port


def orient(flow: Flow) -> Oriented:
    """(initiator, responder, responder's port, is reply) of ``flow``."""
    reply = is_reply(flow)
    protocol = flow.protocol
    if protocol.startswith("ICMP"):
        number = _ICMP_REQUEST_OF_REPLY.get(protocol, {}).get(flow.dst_port, flow.dst_port) if reply \
            else flow.dst_port
        port = Port(number, protocol)
    else:
        port = Port(flow.src_port if reply else flow.dst_port, protocol)
    if reply:
        return Oriented(flow.destination, flow.source, port, True)
    return Oriented(flow.source, flow.destination, port, False)


def flow_port(flow: Flow) -> Port:
    """The flow's own destination port, not turned around for replies (what a dropped packet was sent to)."""
    return Port(flow.dst_port, flow.protocol)


def opens_connection(flow: Flow, reply: bool) -> bool:
    """Does this flow stand for one attempt? A request-direction SYN (or, without TCP flags, any request)."""
    if reply:
        return False
    flags = flow.tcp_flags
    return not flags or ("SYN" in flags and "ACK" not in flags)
