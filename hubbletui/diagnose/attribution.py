"""A drop group against the cluster's history: does a state allow its traffic, which change it followed, which
change ended it. `loop` finds the changes; this module says what "allowed" means for a group."""

from __future__ import annotations

from hubbletui.cluster.timeline import StateView, TimelineEntry
from hubbletui.diagnose import drop_reasons
from hubbletui.diagnose.groups import DropGroup
from hubbletui.diagnose.loop import resolved_by, started_after
from hubbletui.diagnose.mesh_refusals import LAYER as ISTIO
from hubbletui.errors import HubbleTuiError
from hubbletui.policy.as_of import EngineAt
from hubbletui.policy.engine import PolicyEngine
from hubbletui.policy.result import ALLOWED
from hubbletui.policy.subjects import Subject


def allows(engine: PolicyEngine, group: DropGroup) -> bool:
    """Whether ``engine``'s state lets the group's traffic through at the layer that stopped it. Each side is
    its workload where the state knows it (a fix that rolls out new pods), else the flow's own endpoint."""
    sample = group.sample
    try:
        src = _side(engine, group.src, sample.source)
        dst = _side(engine, group.dst, sample.destination)
        trace = engine.trace(src, dst, group.port.number, group.protocol, nearest=False)
    except HubbleTuiError:
        return False
    layer = trace.layer(group.layer) if group.layer in ("ingress", "egress", ISTIO) else None
    if group.layer == ISTIO and layer is None:
        return True  # no sidecar in the way any more
    return layer.verdict == ALLOWED if layer is not None else trace.allowed


def _side(engine: PolicyEngine, ref: str, endpoint) -> Subject:
    if ref.count("/") == 1:
        try:
            return engine.resolve(ref)
        except HubbleTuiError:
            pass
    return engine.subject_for_endpoint(endpoint)


def attribute(group: DropGroup, at: EngineAt, now: float | None = None) -> None:
    """Set the group's `started_after` and `resolved_by` from the timeline (in place); `now`: judge resolution
    by the changes up to this time (a replay in progress), not by all of them."""
    timeline = at.timeline
    if timeline is None or not (group.refusal is not None or drop_reasons.is_policy(group.reason or "UNKNOWN")):
        return

    def allowed(view: StateView) -> bool:
        return allows(at.at_time(view.at), group)

    sample = group.sample
    pods = {(ep.namespace, ep.pod) for ep in (sample.source, sample.destination) if ep.pod}

    def related(entry: TimelineEntry) -> bool:
        return entry.kind == "Pod" and entry.key in pods

    last = group.refusal.evidence.last_refused_ns if group.refusal is not None else group.last_ns
    group.started_after = started_after(timeline, group.first_ns, allows=allowed, related=related)
    group.resolved_by = resolved_by(timeline, last, allowed, now)
