"""Why a group of drops was dropped.

A policy drop is traced through the engine at the layer Hubble names (`traffic_direction`). When the engine
would allow what Hubble dropped for a policy reason, the group is a *disagreement* (a stale snapshot, or a rule
we do not model) and says so, never hides it. Other drops are explained by what their reason means.
Connections Hubble forwarded but Istio's sidecar refuses (issue 7) are drops too: they join as groups of
layer "istio" (see mesh_refusals.py), explained by the refusal itself.
"""

from __future__ import annotations

from hubbletui.diagnose import drop_reasons
from hubbletui.diagnose.groups import DISAGREEMENT, EXPLAINED, NOT_POLICY, UNRESOLVED, DropGroup, Pair
from hubbletui.diagnose.mesh_refusals import LAYER, MeshRefusal
from hubbletui.errors import HubbleTuiError
from hubbletui.flows.model import Flow
from hubbletui.policy.engine import PolicyEngine
from hubbletui.policy.result import ALLOWED


def explain_group(engine: PolicyEngine, group: DropGroup) -> DropGroup:
    """Fill in the status, layer, trace and explanation of one group (in place; returned for chaining)."""
    flow = group.sample
    info = drop_reasons.describe(flow.reason_name or flow.drop_reason)
    group.reason_info = info
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
        verb = "audited this (enforcing drops it)" if group.audit else "dropped this"
        group.explanation = (f"Hubble {verb} for {info.name} {where}, but the cluster state allows it "
                             f"there ({ours.explanation if ours else trace.explanation()}). The snapshot may be "
                             "stale, or a rule we do not model decided.")
        return group
    group.status = EXPLAINED
    group.explanation = ours.explanation
    _compare_attribution(group, flow, ours, info.name)
    return group


def _compare_attribution(group: DropGroup, flow: Flow, ours, reason_name: str) -> None:
    """Where Hubble named a deny or the reason kind, check it against what the engine found. An audited flow
    names no reason of its own (see `Flow.reason_name`): only its policy lists are compared."""
    hubble_said = not (flow.is_audit and not flow.drop_reason)
    if hubble_said and reason_name == "POLICY_DENY" and ours.reason != "deny-rule":
        group.notes.append("Hubble says an explicit deny rule matched (POLICY_DENY); the engine finds no "
                           "matching deny rule, only default deny")
    if hubble_said and reason_name == "POLICY_DENIED" and ours.reason == "deny-rule":
        group.notes.append("the engine finds a matching deny rule, but Hubble reports default deny "
                           "(POLICY_DENIED); the deny rule may be newer than the flow")
    named = flow.ingress_denied_by if ours.layer == "ingress" else flow.egress_denied_by
    ours_refs = {hit.ref for hit in ours.denied_by}
    for ref in named:
        if ref.ref not in ours_refs:
            group.notes.append(f"Hubble attributes the drop to {ref.ref}, which the engine does not find matching")


def refusal_group(refusal: MeshRefusal, sample: Flow, pair: Pair) -> DropGroup:
    """A mesh refusal as a drop group of layer "istio"."""
    evidence = refusal.evidence
    group = DropGroup(refusal.key, refusal.count, evidence.first_ns or sample.time_ns,
                      evidence.last_ns or sample.time_ns, sample, status=EXPLAINED, explanation=refusal.summary,
                      layer=LAYER, notes=[line.removeprefix("note: ") for line in refusal.detail_lines()],
                      refusal=refusal, pairs={pair: None})
    if refusal.confidence != "high":
        group.notes.append("low confidence: the policy refuses this, but the flows show no refusal yet")
    return group
