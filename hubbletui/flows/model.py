"""The normalised, immutable records the rest of hubbletui reasons about.

NamedTuples are immutable and slotted (no per-instance __dict__), and building one is a single C-level
tuple allocation: decoding is the hot path, so these stay plain tuples with a few derived properties.
`raw` keeps the message as it arrived (a dict from JSON or a protobuf message) so output can be lossless.
"""

from __future__ import annotations

from typing import Any, NamedTuple

NO_POLICIES: tuple = ()


class PolicyRef(NamedTuple):
    """One entry of Hubble's *_allowed_by / *_denied_by lists."""

    name: str
    namespace: str
    kind: str
    revision: int
    labels: tuple[str, ...]

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"


class Endpoint(NamedTuple):
    namespace: str
    pod: str
    labels: tuple[str, ...]  # Hubble form: "k8s:app=x", "reserved:world"
    identity: int
    workloads: tuple[tuple[str, str], ...]  # ((kind, name), ...)
    ip: str
    cluster: str

    @property
    def ref(self) -> str:
        """How people name this endpoint: ns/pod, or the reserved identity (world, host, ...), or the IP."""
        if self.pod:
            return f"{self.namespace}/{self.pod}"
        reserved = [lbl[9:] for lbl in self.labels if lbl.startswith("reserved:")]
        if reserved:
            # the API server also carries reserved:world, and world peers carry world-ipv4 too: name the
            # specific identity when there is one, else plain "world"
            specific = [r for r in reserved if not r.startswith("world")]
            return specific[0] if specific else min(reserved, key=len)
        return self.ip or "unknown"

    @property
    def workload_name(self) -> str:
        """The owning workload (Deployment, ...) if Hubble named one, else the pod, else the ref."""
        if self.workloads:
            return self.workloads[0][1]
        return self.pod or self.ref

    @property
    def workload_ref(self) -> str:
        if self.workloads or self.pod:
            return f"{self.namespace}/{self.workload_name}"
        return self.ref

    def label_map(self) -> dict[str, str]:
        """Labels without their source prefix, as a selector would see them: {"app": "x"}."""
        out = {}
        for lbl in self.labels:
            src, _, kv = lbl.partition(":")
            key, _, value = (kv if kv else src).partition("=")
            out[key] = value
        return out


class L7(NamedTuple):
    """The part of an L7 record a person scans: what was asked and what came back."""

    type: str  # REQUEST | RESPONSE | SAMPLE
    protocol: str  # http | dns | kafka
    method: str  # HTTP method or DNS qtypes
    target: str  # URL or DNS query or Kafka topic
    code: int  # HTTP status or DNS rcode or Kafka error code
    latency_ns: int


class Flow(NamedTuple):
    time_ns: int
    verdict: str
    drop_reason: int
    drop_reason_name: str
    direction: str  # INGRESS | EGRESS | "" (Hubble's traffic_direction: which side decided)
    source: Endpoint
    destination: Endpoint
    protocol: str  # TCP | UDP | SCTP | ICMPv4 | ICMPv6 | VRRP | IGMP | ""
    src_port: int  # ICMP: 0
    dst_port: int  # ICMP: the ICMP type
    tcp_flags: tuple[str, ...]
    l7: L7 | None
    node: str
    is_reply: bool | None
    event_type: int
    event_sub_type: int
    flow_type: str
    policy_match_type: int
    trace_point: str
    egress_allowed_by: tuple[PolicyRef, ...]
    ingress_allowed_by: tuple[PolicyRef, ...]
    egress_denied_by: tuple[PolicyRef, ...]
    ingress_denied_by: tuple[PolicyRef, ...]
    raw: Any  # DNS names of the peers (source_names/destination_names) stay here: see decode.dns_names

    @property
    def is_drop(self) -> bool:
        return self.verdict == "DROPPED"

    @property
    def is_audit(self) -> bool:
        """Cilium's policy audit mode let it through, and would have dropped it when enforcing."""
        return self.verdict == "AUDIT"

    @property
    def would_drop(self) -> bool:
        """Dropped, or audited: the flows a policy fix is for."""
        return self.verdict == "DROPPED" or self.verdict == "AUDIT"

    @property
    def reason_name(self) -> str:
        """The drop reason, by name. An AUDIT verdict carries none (the datapath passed the packet): it is the
        reason enforcing would have given, POLICY_DENY when Hubble names a deny rule, else POLICY_DENIED."""
        if self.verdict == "AUDIT" and not self.drop_reason:
            return "POLICY_DENY" if self.egress_denied_by or self.ingress_denied_by else "POLICY_DENIED"
        return self.drop_reason_name or (str(self.drop_reason) if self.drop_reason else "")


class NodeStatus(NamedTuple):
    """Relay's word on a node: NODE_CONNECTED, NODE_UNAVAILABLE, NODE_GONE, NODE_ERROR."""

    time_ns: int
    state: str
    node_names: tuple[str, ...]
    message: str
    node: str
    raw: Any


class LostEvents(NamedTuple):
    """Hubble could not keep up somewhere and says how many events it lost."""

    time_ns: int
    source: str
    num_lost: int
    cpu: int | None
    node: str
    raw: Any


Event = Flow | NodeStatus | LostEvents
