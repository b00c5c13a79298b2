"""What a suggestion is for: one group of dropped flows (or connections the mesh refused), keyed as `explain`
groups them: (source workload, destination workload, port, protocol, reason).

Cilium policy drops are grouped and explained by `hubbletui.diagnose.explain`; Istio refusals come from
`hubbletui.diagnose.mesh_refusals`, which finds them among forwarded flows. A case keeps the distinct endpoint
pairs it saw, so that a check asks about every pod identity involved, not only the first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hubbletui.flows.model import Endpoint, Flow
from hubbletui.diagnose import drop_reasons
from hubbletui.diagnose.explain import DropGroup, drop_key, explain_group, group_drops

MAX_PAIRS = 16  # distinct (source pod, destination pod) kept per case: enough to check every identity involved
TROUBLE = ("CrashLoopBackOff", "Error", "OOMKilled")  # a pod whose own connections failing may be the cause


@dataclass
class DropCase:
    src_ref: str  # workload refs: "ns/workload", "ns/pod", "world", an IP
    dst_ref: str
    port: int  # ICMP: the type
    protocol: str
    reason: str  # POLICY_DENIED | POLICY_DENY | ISTIO_AUTHZ_DENIED | ISTIO_MTLS_STRICT_PLAINTEXT | ...
    layer: str  # egress | ingress (Hubble's traffic_direction) | istio | "" (not said)
    count: int = 0
    pairs: tuple[tuple[Endpoint, Endpoint], ...] = ()  # empty: resolve the refs instead
    summary: str = ""  # the explanation explain (or the mesh refusal detector) gave

    @property
    def key(self) -> tuple[str, str, int, str, str]:
        return self.src_ref, self.dst_ref, self.port, self.protocol, self.reason

    @property
    def port_label(self) -> str:
        return f"{self.protocol} type {self.port}" if self.protocol.startswith("ICMP") else \
            f"{self.port}/{self.protocol}"

    @property
    def title(self) -> str:
        """"database/fdb-exporter -> database/foundationdb 4500/TCP" """
        return f"{self.src_ref} -> {self.dst_ref} {self.port_label}"

    @property
    def fixes_text(self) -> str:
        what = "refused connections" if self.layer == "istio" else "dropped flows"
        where = f" at {self.layer}" if self.layer else ""
        return f"{self.title} ({self.reason}{where}, {self.count} {what})"

    def to_dict(self) -> dict:
        return {"src": self.src_ref, "dst": self.dst_ref, "port": self.port, "protocol": self.protocol,
                "reason": self.reason, "layer": self.layer or None, "count": self.count}


def policy_drop_cases(flows: list[Flow], engine) -> tuple[list[DropCase], int]:
    """Cilium policy drops grouped and explained; also how many drops no policy change can fix (other drop
    reasons, and dropped replies, which point at connection tracking rather than at a rule)."""
    drops = [f for f in flows if f.is_drop]
    policy = [f for f in drops if not f.is_reply and drop_reasons.is_policy(f.drop_reason_name or f.drop_reason)]
    pairs: dict[tuple, dict[tuple[Endpoint, Endpoint], None]] = {}
    cache: dict = {}
    for flow in policy:
        seen = pairs.setdefault(drop_key(flow, engine, cache), {})
        if len(seen) < MAX_PAIRS:
            seen.setdefault((flow.source, flow.destination), None)
    cases = []
    for group in group_drops(policy, engine):
        explain_group(engine, group)
        cases.append(case_of_group(group, tuple(pairs[group.key])))
    return cases, len(drops) - len(policy)


def case_of_group(group: DropGroup, pairs: tuple[tuple[Endpoint, Endpoint], ...] = ()) -> DropCase:
    """A case from an explained `DropGroup` (the TUI and `explain` have those)."""
    key = group.key
    pairs = pairs or ((group.sample.source, group.sample.destination),)
    return DropCase(key.src, key.dst, key.port, key.protocol or "TCP", key.reason, group.layer, group.flows, pairs,
                    group.explanation)


def case_of_refusal(refusal, source: Endpoint | None = None, destination: Endpoint | None = None) -> DropCase:
    """A case from a `MeshRefusal`, with the endpoints the connection tracker last saw when known."""
    pairs = ((source, destination),) if source is not None and destination is not None else ()
    return DropCase(refusal.source, refusal.destination, refusal.port, refusal.protocol, refusal.reason, "istio",
                    refusal.count, pairs, refusal.summary)


def as_case(group) -> DropCase:
    """A DropCase from whatever names a group: a DropCase, an explained DropGroup, or a MeshRefusal."""
    if isinstance(group, DropCase):
        return group
    if isinstance(group, DropGroup):
        return case_of_group(group)
    if hasattr(group, "evidence") and hasattr(group, "reason"):
        return case_of_refusal(group)
    raise TypeError(f"cannot suggest fixes for a {type(group).__name__}")


def refusal_cases(detector) -> list[DropCase]:
    """Cases from a `MeshRefusalDetector` that has seen the flows."""
    from hubbletui.diagnose.connections import GroupKey

    out = []
    for r in detector.refusals():
        group = detector.tracker.group(GroupKey(r.source, r.destination, r.port, r.protocol))
        out.append(case_of_refusal(r, *((group.source, group.destination) if group is not None else ())))
    return out


def _in_trouble(engine, case: DropCase) -> bool:
    """Is a pod of the source crashlooping (or failing)? Its own failing connections may be why."""
    members = engine.inventory.namespaces.get(case.src_ref.partition("/")[0]) if "/" in case.src_ref else None
    if members is None:
        return False
    name = case.src_ref.partition("/")[2]
    pods = [members.raw.get("Pod", {}).get(p) for owner, names in members.members.items() if owner[1] == name
            for p in names] or [members.raw.get("Pod", {}).get(name)]
    for pod in filter(None, pods):
        for status in ((pod.get("status") or {}).get("containerStatuses") or []):
            state = (status or {}).get("state") or {}
            if any(((state.get(k) or {}).get("reason") in TROUBLE) for k in ("waiting", "terminated")):
                return True
    return False


def cases_from_flows(flows: Iterable, engine) -> tuple[list[DropCase], int]:
    """Every case in ``flows``: Cilium policy drops and the connections Istio refuses, those whose source pod is
    crashlooping first, then by how many flows; and the number of drops no policy change can fix."""
    from hubbletui.diagnose.mesh_refusals import MeshRefusalDetector

    flows = [f for f in flows if isinstance(f, Flow)]
    cases, other = policy_drop_cases(flows, engine)
    detector = MeshRefusalDetector(engine.state, root_namespace=engine.istio_root_namespace)
    detector.observe_events(flows)
    cases += refusal_cases(detector)
    trouble = {id(c): _in_trouble(engine, c) for c in cases}
    cases.sort(key=lambda c: (not trouble[id(c)], -c.count, c.key))
    return cases, other
