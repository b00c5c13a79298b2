"""Ports: one port clause of a rule, and sets of (protocol, port range) for "which connections are allowed".

A clause is Cilium's `toPorts[].ports[]` or NetworkPolicy's `ports[]` after translation: a number (with an
optional inclusive endPort), a name resolved on the destination pod's containerPorts, or all ports; protocol
TCP, UDP, SCTP or ANY (the three of them). ICMP is never matched by a port clause, only by `icmps`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

L4_PROTOCOLS = ("TCP", "UDP", "SCTP")
ICMP_PROTOCOLS = ("ICMPv4", "ICMPv6")
PROTOCOLS = L4_PROTOCOLS + ICMP_PROTOCOLS
MAX_PORT = 65535
NamedPorts = Mapping[str, tuple[tuple[int, str], ...]]  # name -> ((port, protocol), ...)


def normalise_protocol(text: str) -> str:
    """'tcp' -> 'TCP', 'icmp' -> 'ICMPv4', 'icmpv6' -> 'ICMPv6'; ValueError for others."""
    upper = (text or "").strip().upper()
    if upper in L4_PROTOCOLS:
        return upper
    if upper in ("ICMP", "ICMPV4"):
        return "ICMPv4"
    if upper == "ICMPV6":
        return "ICMPv6"
    raise ValueError(f"unknown protocol {text!r} (tcp, udp, sctp, icmp, icmpv6)")


@dataclass(frozen=True)
class PortClause:
    port: int = 0  # 0 = every port
    end_port: int = 0  # inclusive upper bound of a range; 0 = just `port`
    name: str = ""  # a named port, resolved on the destination
    protocol: str = "ANY"  # TCP | UDP | SCTP | ANY

    def protocols(self) -> tuple[str, ...]:
        return L4_PROTOCOLS if self.protocol == "ANY" else (self.protocol,)

    def matches(self, port: int, protocol: str, named_ports: NamedPorts) -> bool:
        if protocol not in L4_PROTOCOLS or (self.protocol != "ANY" and self.protocol != protocol):
            return False
        if self.name:
            return any(p == port and proto == protocol for p, proto in named_ports.get(self.name, ()))
        if not self.port:
            return True
        return self.port <= port <= max(self.port, self.end_port)

    def ranges(self, named_ports: NamedPorts) -> dict[str, list[tuple[int, int]]]:
        """The concrete (protocol -> ranges) this clause admits towards a destination with ``named_ports``."""
        if self.name:
            out: dict[str, list[tuple[int, int]]] = {}
            for p, proto in named_ports.get(self.name, ()):
                if self.protocol in ("ANY", proto) and proto in L4_PROTOCOLS:
                    out.setdefault(proto, []).append((p, p))
            return out
        span = (1, MAX_PORT) if not self.port else (self.port, max(self.port, self.end_port))
        return {proto: [span] for proto in self.protocols()}

    def text(self) -> str:
        if self.name:
            where = self.name
        elif not self.port:
            where = "all ports"
        elif self.end_port and self.end_port != self.port:
            where = f"{self.port}-{self.end_port}"
        else:
            where = str(self.port)
        return f"{where}/{self.protocol}"


@dataclass(frozen=True)
class IcmpClause:
    family: str  # ICMPv4 | ICMPv6
    type: int | None  # None = any type

    def matches(self, icmp_type: int, protocol: str) -> bool:
        return protocol == self.family and (self.type is None or self.type == icmp_type)

    def text(self) -> str:
        return f"{self.family}" + (f" type {self.type}" if self.type is not None else "")


class PortSet:
    """Allowed connections: protocol -> sorted disjoint inclusive ranges (ICMP types for ICMPv4/ICMPv6)."""

    __slots__ = ("ranges",)

    def __init__(self, ranges: Mapping[str, Iterable[tuple[int, int]]] | None = None):
        self.ranges: dict[str, list[tuple[int, int]]] = {}
        for proto, spans in (ranges or {}).items():
            merged = _merge(spans)
            if merged:
                self.ranges[proto] = merged

    @classmethod
    def all(cls) -> PortSet:
        return cls({**{p: [(1, MAX_PORT)] for p in L4_PROTOCOLS}, **{p: [(0, 255)] for p in ICMP_PROTOCOLS}})

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PortSet) and self.ranges == other.ranges

    def __or__(self, other: PortSet) -> PortSet:
        if not other.ranges or self is ALL_PORTS:
            return self
        if not self.ranges or other is ALL_PORTS:
            return other
        keys = set(self.ranges) | set(other.ranges)
        return PortSet({k: self.ranges.get(k, []) + other.ranges.get(k, []) for k in keys})

    def __and__(self, other: PortSet) -> PortSet:
        if self is ALL_PORTS:
            return other
        if other is ALL_PORTS:
            return self
        out = {}
        for proto in set(self.ranges) & set(other.ranges):
            out[proto] = [(max(a, c), min(b, d)) for a, b in self.ranges[proto] for c, d in other.ranges[proto]
                          if max(a, c) <= min(b, d)]
        return PortSet(out)

    def __sub__(self, other: PortSet) -> PortSet:
        out = {}
        for proto, spans in self.ranges.items():
            cut = other.ranges.get(proto)
            out[proto] = _subtract(spans, cut) if cut else spans
        return PortSet(out)

    def contains(self, protocol: str, port: int) -> bool:
        return any(a <= port <= b for a, b in self.ranges.get(protocol, ()))

    def is_all(self) -> bool:
        return self == ALL_PORTS

    def to_dict(self) -> dict[str, list[list[int]]]:
        return {proto: [[a, b] for a, b in self.ranges[proto]] for proto in PROTOCOLS if proto in self.ranges}

    def text(self) -> str:
        if not self.ranges:
            return "nothing"
        if self.is_all():
            return "all connections"
        parts = []
        for proto in PROTOCOLS:
            spans = self.ranges.get(proto)
            if not spans:
                continue
            full = (0, 255) if proto in ICMP_PROTOCOLS else (1, MAX_PORT)
            if spans == [full]:
                parts.append(f"{proto} all")
            else:
                parts.append(proto + " " + ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans))
        return "; ".join(parts)

    def __repr__(self) -> str:
        return f"PortSet({self.text()})"


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _subtract(spans: list[tuple[int, int]], cut: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out = []
    for a, b in spans:
        start = a
        for c, d in cut:
            if d < start or c > b:
                continue
            if c > start:
                out.append((start, c - 1))
            start = max(start, d + 1)
            if start > b:
                break
        if start <= b:
            out.append((start, b))
    return out


ALL_PORTS = PortSet.all()  # shared: a PortSet is never changed after it is made
