"""Groups of drops: the flows of one connection with one outcome, as `explain` explains them, `suggest` fixes
them and the TUI drills into them.

Cilium's drops are keyed by the workloads the cluster state names on each side; the connections Istio's
sidecar refused (`mesh_refusals`), which Hubble shows as forwarded, are groups of layer "istio". A group keeps the distinct endpoint pairs it saw, so that a check asks about
every pod identity involved, not only the first.

Flows Cilium's policy audit mode passed (verdict AUDIT: it would have dropped them when enforcing) join the
group of the drop they stand for, with the reason enforcing would give (`Flow.reason_name`): a recording taken in
audit mode gets the fixes its enforcing twin would. A group counts its audited flows, and says it is audit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hubbletui.diagnose import drop_reasons
from hubbletui.diagnose.loop import Attribution
from hubbletui.diagnose.mesh_refusals import LAYER as ISTIO, MeshRefusal
from hubbletui.diagnose.pod_status import pod_status
from hubbletui.flows.conn import Conn, GroupKey, Port
from hubbletui.flows.model import Endpoint, Flow
from hubbletui.policy.engine import PolicyEngine
from hubbletui.policy.result import TraceResult

EXPLAINED, DISAGREEMENT, NOT_POLICY, UNRESOLVED = "explained", "disagreement", "not-policy", "unresolved"
MAX_PAIRS = 16  # distinct (source pod, destination pod) kept per group: enough to check every identity involved
Pair = tuple[Endpoint, Endpoint]


@dataclass
class DropGroup:
    key: GroupKey
    flows: int
    first_ns: int
    last_ns: int
    sample: Flow
    status: str = UNRESOLVED  # explained | disagreement | not-policy | unresolved
    explanation: str = ""
    layer: str = ""  # the layer that dropped: ingress | egress (Hubble's word, else the engine's) | istio | ""
    trace: TraceResult | None = None
    reason_info: drop_reasons.DropReasonInfo | None = None
    notes: list[str] = field(default_factory=list)
    directions: set[str] = field(default_factory=set)  # every traffic_direction seen in the group
    refusal: MeshRefusal | None = None  # layer "istio": the refusal this group stands for
    pairs: dict[Pair, None] = field(default_factory=dict)  # distinct non-reply endpoint pairs, at most MAX_PAIRS
    replies: int = 0  # dropped replies: connection tracking's doing, which no rule change fixes
    in_trouble: bool = False  # a pod of the source is crashlooping (or failing): its failing connections may be why
    audited: int = 0  # flows of verdict AUDIT: passed in audit mode, dropped once enforcing
    # with a cluster timeline (diagnose.attribution): the change the drops followed, and the one that ended them
    started_after: Attribution | None = None
    resolved_by: Attribution | None = None

    # the key's parts, as the fixes and reports name them
    src = property(lambda self: self.key.src)
    dst = property(lambda self: self.key.dst)
    port = property(lambda self: self.key.port)
    reason = property(lambda self: self.key.reason)

    @property
    def protocol(self) -> str:
        """The protocol a fix names: TCP where Hubble said none."""
        return self.key.port.protocol or "TCP"

    @property
    def audit(self) -> bool:
        """Every flow of the group was audited, none dropped: enforcing would start dropping them."""
        return self.audited > 0 and self.audited == self.flows

    @property
    def is_disagreement(self) -> bool:
        return self.status == DISAGREEMENT

    @property
    def fixable(self) -> bool:
        """Can a policy change fix it: a mesh refusal, or a policy drop of connections (not only replies)."""
        if self.refusal is not None:
            return True
        return drop_reasons.is_policy(self.reason or "UNKNOWN") and self.flows > self.replies

    @property
    def count(self) -> int:
        """What a fix stops: refused connection attempts, or dropped flows that were not replies."""
        return self.refusal.count if self.refusal is not None else self.flows - self.replies

    @property
    def endpoint_pairs(self) -> tuple[Pair, ...]:
        return tuple(self.pairs) or ((self.sample.source, self.sample.destination),)

    @property
    def title(self) -> str:
        """"database/fdb-exporter -> database/foundationdb 4500/TCP" """
        return self.key.conn.text

    @property
    def fixes_text(self) -> str:
        what = "refused connections" if self.layer == ISTIO else \
            "audited flows that enforcing drops" if self.audit else "dropped flows"
        where = f" at {self.layer}" if self.layer else ""
        return f"{self.title} ({self.reason}{where}, {self.count} {what})"

    def add(self, flow: Flow) -> None:
        self.flows += 1
        if flow.verdict == "AUDIT":
            self.audited += 1
        self.first_ns = min(self.first_ns, flow.time_ns)
        self.last_ns = max(self.last_ns, flow.time_ns)
        if flow.direction:
            self.directions.add(flow.direction.lower())
        if flow.is_reply:
            self.replies += 1
        elif len(self.pairs) < MAX_PAIRS:
            self.pairs.setdefault((flow.source, flow.destination), None)

    def case_dict(self) -> dict:
        """The group as `suggest -o json` names it."""
        port = self.key.port
        return {"src": self.src, "dst": self.dst, "port": port.number, "protocol": self.protocol,
                "reason": self.reason, "layer": self.layer or None, "count": self.count, "audit": self.audit}

    def to_dict(self) -> dict:
        """The group as `explain -o json` reports it."""
        port = self.key.port
        return {"src": self.src, "dst": self.dst, "port": port.number, "protocol": port.protocol,
                "reason": self.reason, "flows": self.flows, "audit": self.audit, "audited_flows": self.audited,
                "first_time_ns": self.first_ns,
                "last_time_ns": self.last_ns, "status": self.status, "layer": self.layer or None,
                "explanation": self.explanation,
                "reason_info": self.reason_info.to_dict() if self.reason_info else None,
                "sample": {"source": self.sample.source.ref, "destination": self.sample.destination.ref,
                           "direction": self.sample.direction or None, "node": self.sample.node or None,
                           "time_ns": self.sample.time_ns},
                "trace": self.trace.to_dict() if self.trace else None, "notes": self.notes,
                "istio": self.refusal.to_dict() if self.refusal else None,
                **({"started_after": self.started_after.to_dict()} if self.started_after else {}),
                **({"resolved_by": self.resolved_by.to_dict()} if self.resolved_by else {})}


class DropNamer:
    """The key of a dropped flow. With an engine, each side is named by the workload the cluster state knows
    (Hubble's own `workloads` may be missing, as in exporter files), else by what Hubble said."""

    def __init__(self, engine: PolicyEngine | None, engine_at: Callable[[int], PolicyEngine] | None = None):
        self.engine = engine
        self._at = engine_at  # the engine as of a flow's time (policy.as_of), when the cluster has a history
        self._refs: dict[tuple, str] = {}

    def key(self, flow: Flow) -> GroupKey:
        reason = flow.reason_name or "UNKNOWN"
        engine = self._at(flow.time_ns) if self._at is not None else self.engine
        conn = Conn(self._ref(flow.source, engine), self._ref(flow.destination, engine),
                    Port(flow.dst_port, flow.protocol))
        return GroupKey(conn, "DROPPED", reason)

    def _ref(self, endpoint: Endpoint, engine: PolicyEngine | None) -> str:
        if engine is None:
            return endpoint.workload_ref
        key = (engine, endpoint.namespace, endpoint.pod, endpoint.ip, endpoint.labels, endpoint.identity)
        ref = self._refs.get(key)
        if ref is None:
            subject = engine.subject_for_endpoint(endpoint)
            ref = self._refs[key] = subject.workload_ref if subject.kind in ("pod", "workload", "flow") \
                else endpoint.ref
        return ref


def group_drops(flows: Iterable, engine: PolicyEngine | None = None,
                engine_at: Callable[[int], PolicyEngine] | None = None) -> list[DropGroup]:
    """The dropped (or audited) flows of ``flows`` (other events are ignored) grouped, most flows first."""
    namer, groups = DropNamer(engine, engine_at), {}
    for flow in flows:
        if isinstance(flow, Flow) and flow.would_drop:
            add_flow(groups, namer.key(flow), flow)
    return sorted(groups.values(), key=lambda g: (-g.flows, g.key))


def add_flow(groups: dict[GroupKey, DropGroup], key: GroupKey, flow: Flow) -> None:
    group = groups.get(key)
    if group is None:
        group = groups[key] = DropGroup(key, 0, flow.time_ns, flow.time_ns, flow)
    group.add(flow)


def source_in_trouble(engine: PolicyEngine, ref: str) -> bool:
    """Is a pod of the workload ``ref`` ("ns/name") crashlooping or failing (`pod_status.TROUBLE`)?"""
    namespace, _, name = ref.partition("/")
    members = engine.inventory.namespaces.get(namespace) if name else None
    if members is None:
        return False
    pods = [p for owner, names in members.members.items() if owner[1] == name for p in names] or [name]
    return any((status := pod_status(engine.state, namespace, pod)) is not None and status.trouble for pod in pods)

