"""The check every candidate passes before anyone sees it, on a what-if copy of the policy engine:

1. the group's dropped flows become allowed at every layer the fix is for (every pod pair the group saw);
2. every connection the input shows working stays allowed at every layer that allowed it;
3. its blast radius: the (source workload, destination workload, ports) it newly allows beyond the group,
   at Cilium's layers (the engine's `newly_allowed`) and at Istio's where an AuthorizationPolicy changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hubbletui.policy import istio_layer
from hubbletui.policy.engine import PolicyEngine
from hubbletui.policy.ports import PortSet
from hubbletui.policy.result import ALLOWED
from hubbletui.policy.rules import EGRESS, INGRESS
from hubbletui.policy.subjects import Subject
from hubbletui.suggest.cases import DropCase
from hubbletui.suggest.model import BlastRadius, Change, NewPair
from hubbletui.suggest.observed import ObservedTraffic, Seen
from hubbletui.suggest.workloads import namespace_subjects


@dataclass
class CheckResult:
    ok: bool
    failure: str = ""
    blast: BlastRadius = field(default_factory=BlastRadius)
    notes: list[str] = field(default_factory=list)


def _resolve(engine: PolicyEngine, case: DropCase, pair) -> tuple[Subject, Subject]:
    if pair is None:
        return engine.resolve(case.src_ref), engine.resolve(case.dst_ref)
    return engine.subject_for_endpoint(pair[0]), engine.subject_for_endpoint(pair[1])


def case_pairs(engine: PolicyEngine, case: DropCase) -> list[tuple[object, tuple[Subject, Subject]]]:
    """One (endpoint pair, subjects) per distinct identity pair of the case; the endpoint pair is None when
    the case names workloads only. Resolve the same endpoint pairs on a what-if view to see them changed."""
    out: dict[tuple, tuple[object, tuple[Subject, Subject]]] = {}
    for pair in case.pairs or (None,):
        src, dst = _resolve(engine, case, pair)
        key = (src.labels.key, src.ip if src.cidr_matchable else "", src.dns_names,
               dst.labels.key, dst.ip if dst.cidr_matchable else "", dst.dns_names, id(dst.named_ports))
        out.setdefault(key, (pair, (src, dst)))
    return list(out.values())


def upserts_of(changes: Iterable[Change]) -> list[dict]:
    return [obj for change in changes for obj in change.after]


class Checker:
    """Checks candidates for one case; the base verdicts are computed once and shared by every candidate."""

    def __init__(self, engine: PolicyEngine, case: DropCase, targets: tuple[str, ...], observed: ObservedTraffic):
        self.engine, self.case, self.targets, self.observed = engine, case, targets, observed
        pairs = case_pairs(engine, case)
        self.endpoint_pairs = [pair for pair, _ in pairs]
        self.base_allowed = [frozenset(layer.layer for layer in engine.trace(s, d, case.port, case.protocol).layers
                                       if layer.verdict == ALLOWED) for _, (s, d) in pairs]
        self.group_refs = {(s.workload_ref, d.workload_ref) for _, (s, d) in pairs}
        self.group_ports = PortSet({case.protocol: [(case.port, case.port)]})

    def check(self, changes: tuple[Change, ...]) -> CheckResult:
        view = self.engine.what_if(upserts=upserts_of(changes))
        failure = self._group(view)
        if failure:
            return CheckResult(False, failure)
        istio_changes = [obj for obj in upserts_of(changes) if obj.get("kind") == "AuthorizationPolicy"]
        failure = self._forwarded(view, istio_changes)
        if failure:
            return CheckResult(False, failure)
        pairs = self._cilium_blast(view) + self._istio_blast(view, istio_changes)
        return CheckResult(True, "", BlastRadius(tuple(sorted(pairs, key=lambda p: (p.layer, p.src, p.dst)))))

    # 1. the group -------------------------------------------------------------------------------------
    def _group(self, view: PolicyEngine) -> str:
        for pair, allowed_before in zip(self.endpoint_pairs, self.base_allowed):
            src, dst = _resolve(view, self.case, pair)
            result = view.trace(src, dst, self.case.port, self.case.protocol)
            for layer in result.layers:
                if layer.verdict == ALLOWED:
                    continue
                if layer.layer in self.targets:
                    return f"{src.id} -> {dst.id} is still denied at {layer.layer}: {layer.explanation}"
                if layer.layer in allowed_before:
                    return f"it would newly deny {src.id} -> {dst.id} at {layer.layer}: {layer.explanation}"
        return ""

    # 2. what works keeps working ----------------------------------------------------------------------
    def _forwarded(self, view: PolicyEngine, istio_changes: list[dict]) -> str:
        base = self.engine
        rules = [r for key in view.changed_policies for eng in (view, base)
                 for r in (eng.policies[key].rules if key in eng.policies else ())]
        istio_namespaces = {(o.get("metadata") or {}).get("namespace") or "default" for o in istio_changes}
        istio_everywhere = base.istio_root_namespace in istio_namespaces

        def touched(seen: Seen) -> bool:
            if seen.src.namespace in view.changed_namespaces or seen.dst.namespace in view.changed_namespaces:
                return True
            if istio_everywhere or seen.dst.namespace in istio_namespaces:
                return True
            return any((r.direction == EGRESS and r.selects(seen.src)) or
                       (r.direction == INGRESS and r.selects(seen.dst)) for r in rules)

        for seen in self.observed.baseline(base):
            if not seen.allowed or not touched(seen):
                continue
            src, dst = view.subject_for_endpoint(seen.src_ep), view.subject_for_endpoint(seen.dst_ep)
            result = view.trace(src, dst, seen.port, seen.protocol)
            for layer in result.layers:
                if layer.layer in seen.allowed and layer.verdict != ALLOWED:
                    return (f"it would break {seen.text}, which the input shows working: denied at {layer.layer} "
                            f"({layer.explanation})")
        return ""

    # 3. blast radius ----------------------------------------------------------------------------------
    def _cilium_blast(self, view: PolicyEngine) -> list[NewPair]:
        out = []
        for item in view.newly_allowed():
            ports = item.ports
            if (item.src.workload_ref, item.dst.workload_ref) in self.group_refs:
                ports = ports - self.group_ports
            if ports:
                out.append(NewPair(item.src.workload_ref, item.dst.workload_ref, ports.text(), "cilium",
                                   _port_count(ports)))
        return out

    def _istio_blast(self, view: PolicyEngine, changed: list[dict]) -> list[NewPair]:
        if not changed:
            return []
        base = self.engine
        namespaces = {(o.get("metadata") or {}).get("namespace") or "default" for o in changed}
        if base.istio_root_namespace in namespaces:
            namespaces = set(view.inventory.namespaces)
        ports, every_port = _authz_ports(changed)
        if every_port:
            ports.add(self.case.port)
        principals = _authz_principals(changed)
        sources = [s for s in view.endpoints() if s.is_endpoint and s.namespace]
        out = []
        for ns in sorted(namespaces):
            for dst in _representatives(namespace_subjects(view, ns)):
                for src in sources:
                    if principals is not None and f"{src.namespace}/sa/{src.service_account}" not in principals:
                        continue
                    for port in sorted(ports):
                        if (src.workload_ref, dst.workload_ref) in self.group_refs and port == self.case.port:
                            continue
                        after = istio_layer.evaluate(view, src, dst, port, "TCP")
                        if after is None or after.verdict != ALLOWED:
                            continue
                        before = istio_layer.evaluate(base, src, dst, port, "TCP")
                        if before is not None and before.verdict != ALLOWED:
                            shown = "all ports (checked on " + str(port) + ")" if every_port else f"TCP {port}"
                            out.append(NewPair(src.workload_ref, dst.workload_ref, shown, "istio"))
        return out


def _representatives(subjects: list[Subject]) -> list[Subject]:
    seen, out = set(), []
    for s in subjects:
        key = (s.workload_ref, s.labels.key)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def _port_count(ports: PortSet) -> int:
    return sum(b - a + 1 for spans in ports.ranges.values() for a, b in spans)


def _authz_rules(objs: list[dict]) -> list[dict]:
    return [r for o in objs for r in ((o.get("spec") or {}).get("rules") or []) if isinstance(r, dict)]


def _authz_ports(objs: list[dict]) -> tuple[set[int], bool]:
    ports: set[int] = set()
    every = False
    for rule in _authz_rules(objs):
        listed = [p for to in rule.get("to") or [] for p in ((to or {}).get("operation") or {}).get("ports") or []]
        every |= not listed
        ports |= {int(p) for p in listed if str(p).isdigit()}
    return ports, every


def _authz_principals(objs: list[dict]) -> set[str] | None:
    """The "ns/<ns>/sa/<sa>" tails every rule restricts its sources to, None when some rule admits others too."""
    tails: set[str] = set()
    for rule in _authz_rules(objs):
        sources = [(f or {}).get("source") or {} for f in rule.get("from") or []]
        if not sources or any(set(s) != {"principals"} for s in sources):
            return None
        for s in sources:
            for p in s["principals"]:
                if "*" in str(p):
                    return None
                tail = str(p).split("/ns/", 1)
                if len(tail) != 2:
                    return None
                tails.add(tail[1])
    return tails
