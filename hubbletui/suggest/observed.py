"""The connections the input shows working: what a fix must not break, and what a pod newly put into default
deny must keep.

Forwarded flows that open a connection (not replies), one per (source identity, destination identity, port,
protocol): pods of one workload with one label set share every verdict, so one of them stands for the rest.
Each is traced once on the unchanged engine; a check then re-traces only those a change can touch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hubbletui.errors import HubbleTuiError
from hubbletui.flows.model import Endpoint, Flow
from hubbletui.policy.engine import PolicyEngine
from hubbletui.policy.result import ALLOWED
from hubbletui.policy.subjects import Subject

PASSED = ("FORWARDED", "REDIRECTED")
MAX_CONNECTIONS = 20_000
EPHEMERAL_START = 32768


@dataclass(frozen=True)
class Seen:
    """One working connection: its endpoints (to resolve again on a what-if view) and its base verdict."""

    src_ep: Endpoint
    dst_ep: Endpoint
    port: int
    protocol: str
    src: Subject
    dst: Subject
    allowed: frozenset[str]  # the layers (egress, ingress, istio) that allow it on the unchanged engine

    @property
    def text(self) -> str:
        where = self.protocol if self.protocol.startswith("ICMP") else f"{self.port}/{self.protocol}"
        return f"{self.src.workload_ref} -> {self.dst.workload_ref} {where}"


def _opens_connection(flow: Flow) -> bool:
    if flow.verdict not in PASSED or flow.is_reply:
        return False
    if flow.is_reply is None:
        # older agents leave is_reply unset: a SYN opens, and a low port talking to an ephemeral one answers
        if flow.protocol == "TCP" and flow.tcp_flags:
            return "SYN" in flow.tcp_flags and "ACK" not in flow.tcp_flags
        return not (flow.dst_port >= EPHEMERAL_START > flow.src_port)
    return True


def _identity(ep: Endpoint) -> tuple:
    return (ep.namespace, ep.workload_ref, ep.labels, "" if ep.pod else ep.ip)


class ObservedTraffic:
    def __init__(self, flows: Iterable[Flow] = ()):
        self._connections: dict[tuple, tuple[Endpoint, Endpoint, int, str]] = {}
        self.dropped_over_cap = 0
        self._baselines: dict[int, tuple[PolicyEngine, list[Seen]]] = {}
        self.add(flows)

    def add(self, flows: Iterable[Flow]) -> None:
        for flow in flows:
            if not _opens_connection(flow) or not flow.protocol:
                continue
            key = (_identity(flow.source), _identity(flow.destination), flow.dst_port, flow.protocol)
            if key in self._connections:
                continue
            if len(self._connections) >= MAX_CONNECTIONS:
                self.dropped_over_cap += 1
                continue
            self._connections[key] = (flow.source, flow.destination, flow.dst_port, flow.protocol)
        self._baselines.clear()

    def __len__(self) -> int:
        return len(self._connections)

    def baseline(self, engine: PolicyEngine) -> list[Seen]:
        """Every connection with the layers the engine allows it at (computed once per engine)."""
        cached = self._baselines.get(id(engine))
        if cached is not None and cached[0] is engine:
            return cached[1]
        out = []
        subjects: dict[Endpoint, Subject] = {}
        for src_ep, dst_ep, port, protocol in self._connections.values():
            src = subjects.get(src_ep) or subjects.setdefault(src_ep, engine.subject_for_endpoint(src_ep))
            dst = subjects.get(dst_ep) or subjects.setdefault(dst_ep, engine.subject_for_endpoint(dst_ep))
            try:
                result = engine.trace(src, dst, port, protocol)
            except HubbleTuiError:  # a protocol the engine cannot trace (VRRP, IGMP) constrains nothing
                continue
            allowed = frozenset(layer.layer for layer in result.layers if layer.verdict == ALLOWED)
            out.append(Seen(src_ep, dst_ep, port, protocol, src, dst, allowed))
        self._baselines[id(engine)] = (engine, out)
        return out



def of_workload(seen: list[Seen], workload_ref: str, direction: str) -> list[Seen]:
    """The working connections ``workload_ref`` opens (egress) or accepts (ingress)."""
    if direction == "egress":
        return [s for s in seen if s.src.workload_ref == workload_ref]
    return [s for s in seen if s.dst.workload_ref == workload_ref]
