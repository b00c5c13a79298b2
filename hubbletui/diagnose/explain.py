"""Explaining dropped flows: group them by (source workload, destination workload, port, protocol, reason) and
say why each group was dropped.

A policy drop is traced through the engine at the layer Hubble names (`traffic_direction`). When the engine
would allow what Hubble dropped for a policy reason, the group is a *disagreement* (a stale snapshot, or a rule
we do not model) and says so, never hides it. Other drops are explained by what their reason means.
Connections Hubble forwarded but Istio's sidecar refuses (issue 7) are drops too: they join as groups of
layer "istio" (see mesh_refusals.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from hubbletui.errors import HubbleTuiError
from hubbletui.flows.model import Flow
from hubbletui.diagnose import drop_reasons
from hubbletui.policy.engine import PolicyEngine
from hubbletui.diagnose.mesh_refusals import LAYER, MeshRefusal, MeshRefusalDetector
from hubbletui.policy.result import ALLOWED, TraceResult

EXPLAINED, DISAGREEMENT, NOT_POLICY, UNRESOLVED = "explained", "disagreement", "not-policy", "unresolved"


class DropKey(NamedTuple):
    src: str  # ns/workload, ns/pod, an entity or an IP
    dst: str
    port: int  # ICMP: the ICMP type
    protocol: str
    reason: str  # Hubble's drop reason name, e.g. POLICY_DENIED

    def text(self) -> str:
        where = f"{self.protocol} type {self.port}" if self.protocol.startswith("ICMP") else \
            f"{self.port}/{self.protocol or '?'}"
        return f"{self.src} -> {self.dst} {where} ({self.reason})"


@dataclass
class DropGroup:
    key: DropKey
    flows: int
    first_ns: int
    last_ns: int
    sample: Flow
    status: str = UNRESOLVED  # explained | disagreement | not-policy | unresolved
    explanation: str = ""
    layer: str = ""  # the layer that dropped: ingress | egress (Hubble's word, else the engine's) | ""
    trace: TraceResult | None = None
    reason: drop_reasons.DropReasonInfo | None = None
    notes: list[str] = field(default_factory=list)
    directions: set[str] = field(default_factory=set)  # every traffic_direction seen in the group
    refusal: MeshRefusal | None = None  # layer "istio": the refusal this group stands for

    @property
    def is_disagreement(self) -> bool:
        return self.status == DISAGREEMENT

    def to_dict(self) -> dict:
        return {"src": self.key.src, "dst": self.key.dst, "port": self.key.port, "protocol": self.key.protocol,
                "reason": self.key.reason, "flows": self.flows, "first_time_ns": self.first_ns,
                "last_time_ns": self.last_ns, "status": self.status, "layer": self.layer or None,
                "explanation": self.explanation,
                "reason_info": self.reason.to_dict() if self.reason else None,
                "sample": {"source": self.sample.source.ref, "destination": self.sample.destination.ref,
                           "direction": self.sample.direction or None, "node": self.sample.node or None,
                           "time_ns": self.sample.time_ns},
                "trace": self.trace.to_dict() if self.trace else None, "notes": self.notes,
                "istio": self.refusal.to_dict() if self.refusal else None}


def drop_key(flow: Flow, engine: PolicyEngine | None = None, cache: dict | None = None) -> DropKey:
    """The group of a dropped flow. With an engine, each side is named by the workload the cluster state knows
    (Hubble's own `workloads` may be missing, as in exporter files), else by what Hubble said."""
    reason = flow.drop_reason_name or (str(flow.drop_reason) if flow.drop_reason else "UNKNOWN")
    src, dst = flow.source.workload_ref, flow.destination.workload_ref
    if engine is not None:
        src, dst = (_workload_ref(engine, ep, cache if cache is not None else {})
                    for ep in (flow.source, flow.destination))
    return DropKey(src, dst, flow.dst_port, flow.protocol, reason)


def _workload_ref(engine: PolicyEngine, endpoint, cache: dict) -> str:
    key = (endpoint.namespace, endpoint.pod, endpoint.ip, endpoint.labels, endpoint.identity)
    ref = cache.get(key)
    if ref is None:
        subject = engine.subject_for_endpoint(endpoint)
        ref = cache[key] = subject.workload_ref if subject.kind in ("pod", "workload", "flow") else endpoint.ref
    return ref


def group_drops(flows: Iterable, engine: PolicyEngine | None = None) -> list[DropGroup]:
    """Dropped flows of ``flows`` (other events are ignored) grouped by DropKey, most flows first."""
    groups: dict[DropKey, DropGroup] = {}
    cache: dict = {}
    for flow in flows:
        if not isinstance(flow, Flow) or not flow.is_drop:
            continue
        key = drop_key(flow, engine, cache)
        group = groups.get(key)
        if group is None:
            group = groups[key] = DropGroup(key, 0, flow.time_ns, flow.time_ns, flow)
        group.flows += 1
        group.first_ns = min(group.first_ns, flow.time_ns)
        group.last_ns = max(group.last_ns, flow.time_ns)
        if flow.direction:
            group.directions.add(flow.direction.lower())
    return sorted(groups.values(), key=lambda g: (-g.flows, g.key))


def explain_group(engine: PolicyEngine, group: DropGroup) -> DropGroup:
    """Fill in the status, layer, trace and explanation of one group (in place; returned for chaining)."""
    flow = group.sample
    info = drop_reasons.describe(flow.drop_reason_name or flow.drop_reason)
    group.reason = info
    if len(group.directions) > 1:
        group.notes.append("Hubble reports this drop at both ingress and egress within the group")
    if not drop_reasons.is_policy(info.code if info.code is not None else info.name):
        group.status, group.layer = NOT_POLICY, (flow.direction or "").lower()
        group.explanation = f"{info.name}: {info.summary} {info.hint}".strip()
        if flow.l7 is not None:
            group.notes.append(f"an L7 {flow.l7.protocol} record: the proxy answered, the packet was not dropped")
        return group
    if flow.is_reply:
        group.notes.append("a reply was dropped: Cilium does not police replies of connections it allowed, so "
                           "this points at connection tracking (the connection may have been opened before a "
                           "policy change), not at a rule")
    try:
        src = engine.subject_for_endpoint(flow.source)
        dst = engine.subject_for_endpoint(flow.destination)
        protocol = flow.protocol or "TCP"
        trace = engine.trace(src, dst, flow.dst_port, protocol)
    except HubbleTuiError as exc:
        group.status = UNRESOLVED
        group.explanation = f"{info.name}: {info.summary} (could not be traced: {exc})"
        return group
    group.trace = trace
    hubble_layer = (flow.direction or "").lower()
    ours = trace.layer(hubble_layer) if hubble_layer in ("ingress", "egress") else trace.deciding_layer
    group.layer = hubble_layer or (trace.deciding_layer.layer if trace.deciding_layer else "")
    if info.name == "AUTH_REQUIRED" and ours is not None and ours.verdict == ALLOWED \
            and any("mutual authentication" in note for note in ours.notes):
        group.status = EXPLAINED
        group.explanation = (f"{ours.explanation}, but that rule requires mutual authentication and the two "
                             "sides had not authenticated (AUTH_REQUIRED)")
        return group
    if ours is None or ours.verdict == ALLOWED:
        group.status = DISAGREEMENT
        where = f"at {hubble_layer} of {ours.endpoint if ours else dst.id}" if hubble_layer else "anywhere"
        group.explanation = (f"Hubble dropped this for {info.name} {where}, but the cluster state allows it "
                             f"there ({ours.explanation if ours else trace.explanation()}). The snapshot may be "
                             "stale, or a rule we do not model decided.")
        return group
    group.status = EXPLAINED
    group.explanation = ours.explanation
    _compare_attribution(group, flow, ours, info.name)
    return group


def _compare_attribution(group: DropGroup, flow: Flow, ours, reason_name: str) -> None:
    """Where Hubble named a deny or the reason kind, check it against what the engine found."""
    if reason_name == "POLICY_DENY" and ours.reason != "deny-rule":
        group.notes.append("Hubble says an explicit deny rule matched (POLICY_DENY); the engine finds no "
                           "matching deny rule, only default deny")
    if reason_name == "POLICY_DENIED" and ours.reason == "deny-rule":
        group.notes.append("the engine finds a matching deny rule, but Hubble reports default deny "
                           "(POLICY_DENIED); the deny rule may be newer than the flow")
    named = flow.ingress_denied_by if ours.layer == "ingress" else flow.egress_denied_by
    ours_refs = {hit["ref"] for hit in ours.denied_by}
    for ref in named:
        if ref.ref not in ours_refs:
            group.notes.append(f"Hubble attributes the drop to {ref.ref}, which the engine does not find matching")


def refusal_group(refusal: MeshRefusal, sample: Flow) -> DropGroup:
    """A mesh refusal as a drop group of layer "istio"."""
    evidence = refusal.evidence
    group = DropGroup(DropKey(*refusal.key), refusal.count, evidence.first_ns or sample.time_ns,
                      evidence.last_ns or sample.time_ns, sample, status=EXPLAINED, explanation=refusal.summary,
                      layer=LAYER, notes=[line.removeprefix("note: ") for line in refusal.detail_lines()],
                      refusal=refusal)
    if refusal.confidence != "high":
        group.notes.append("low confidence: the policy refuses this, but the flows show no refusal yet")
    return group


def explain_flows(engine: PolicyEngine, flows: Iterable) -> list[DropGroup]:
    """Group every dropped flow and every connection Istio refuses, and explain each group."""
    events = list(flows)
    groups = [explain_group(engine, group) for group in group_drops(events, engine)]
    detector = MeshRefusalDetector(engine)
    detector.observe_events(events)
    refusals = detector.refusals()
    if refusals:
        samples = {}
        for event in events:
            if isinstance(event, Flow) and not event.is_drop:
                samples.setdefault((event.source.workload_ref, event.destination.workload_ref, event.dst_port),
                                   event)
        for refusal in refusals:
            sample = samples.get((refusal.source, refusal.destination, refusal.port))
            if sample is not None:
                groups.append(refusal_group(refusal, sample))
        groups.sort(key=lambda g: (-g.flows, g.key))
    return groups
