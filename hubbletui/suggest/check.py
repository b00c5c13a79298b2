"""The check every candidate passes before anyone sees it, on a what-if copy of the policy engine:

1. the group's dropped flows become allowed at every layer the fix is for (every pod pair the group saw);
2. every connection the input shows working stays allowed at every layer that allowed it (re-traced wherever a
   change could deny: a change that only adds peers or ports to an allow rule cannot);
3. its blast radius: the (source workload, destination workload, ports) it newly allows beyond the group,
   at Cilium's layers (the engine's `newly_allowed`) and at Istio's where an AuthorizationPolicy changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hubbletui.cluster.model import POLICY_KINDS
from hubbletui.policy import istio_layer
from hubbletui.policy.engine import PolicyEngine
from hubbletui.policy.ports import PortSet
from hubbletui.policy.result import ALLOWED
from hubbletui.policy.rules import EGRESS, INGRESS, PolicyKey
from hubbletui.policy.subjects import Subject
from hubbletui.diagnose.groups import DropGroup
from hubbletui.suggest.model import BlastRadius, Change, NewPair
from hubbletui.suggest.observed import ObservedTraffic, Seen
from hubbletui.suggest.workloads import namespace_subjects

BLAST_LIMIT = 25  # pairs counted before a blast radius is "at least this many": enough to rank by


@dataclass
class CheckResult:
    ok: bool
    failure: str = ""
    blast: BlastRadius = field(default_factory=BlastRadius)
    outranked: bool = False  # it opens too much to be shown (see `Checker.check`): not checked any further


def _resolve(engine: PolicyEngine, case: DropGroup, pair) -> tuple[Subject, Subject]:
    if pair is None:
        return engine.resolve(case.src), engine.resolve(case.dst)
    return engine.subject_for_endpoint(pair[0]), engine.subject_for_endpoint(pair[1])


def case_pairs(engine: PolicyEngine, case: DropGroup) -> list[tuple[object, tuple[Subject, Subject]]]:
    """One (endpoint pair, subjects) per distinct identity pair of the case; the endpoint pair is None when
    the case names workloads only. Resolve the same endpoint pairs on a what-if view to see them changed."""
    out: dict[tuple, tuple[object, tuple[Subject, Subject]]] = {}
    for pair in case.pairs or (None,):
        src, dst = _resolve(engine, case, pair)
        key = (src.labels.key, src.ip if src.cidr_matchable else "", src.dns_names, dst.labels.key,
               dst.ip if dst.cidr_matchable else "", dst.dns_names, tuple(sorted(dst.named_ports.items())))
        out.setdefault(key, (pair, (src, dst)))
    return list(out.values())


def upserts_of(changes: Iterable[Change]) -> list[dict]:
    return [obj for change in changes for obj in change.after]


class Checker:
    """Checks candidates for one case; the base verdicts are computed once and shared by every candidate."""

    def __init__(self, engine: PolicyEngine, case: DropGroup, targets: tuple[str, ...], observed: ObservedTraffic):
        self.engine, self.case, self.targets, self.observed = engine, case, targets, observed
        pairs = case_pairs(engine, case)
        self.endpoint_pairs = [pair for pair, _ in pairs]
        self.base_allowed = [frozenset(layer.layer for layer in engine.trace(s, d, case.port.number, case.protocol).layers
                                       if layer.verdict == ALLOWED) for _, (s, d) in pairs]
        self.group_refs = {(s.workload_ref, d.workload_ref) for _, (s, d) in pairs}
        self.group_ports = PortSet({case.protocol: [(case.port.number, case.port.number)]})

    def check(self, changes: tuple[Change, ...], outranked_at: int | None = None) -> CheckResult:
        """``outranked_at``: a candidate that newly allows that many pairs cannot be shown (better ones are
        known); counting stops there and the forwarded flows are not checked."""
        view = self.engine.what_if(upserts=upserts_of(changes))
        failure = self._group(view)
        if failure:
            return CheckResult(False, failure)
        istio_changes = [obj for obj in upserts_of(changes) if obj.get("kind") == "AuthorizationPolicy"]
        limit = min(BLAST_LIMIT, outranked_at) if outranked_at is not None else BLAST_LIMIT
        pairs = self._cilium_blast(view, limit)
        pairs += self._istio_blast(view, istio_changes, limit - len(pairs)) if len(pairs) < limit else []
        pairs.sort(key=lambda p: (p.layer, p.src, p.dst))
        blast = BlastRadius(tuple(pairs[:limit]), len(pairs) >= limit)
        if outranked_at is not None and len(pairs) >= outranked_at:
            return CheckResult(False, "", blast, outranked=True)
        failure = self._forwarded(view, [c for c in changes if not c.widens])
        if failure:
            return CheckResult(False, failure)
        return CheckResult(True, "", blast)

    # 1. the group -------------------------------------------------------------------------------------
    def _group(self, view: PolicyEngine) -> str:
        for pair, allowed_before in zip(self.endpoint_pairs, self.base_allowed, strict=True):
            src, dst = _resolve(view, self.case, pair)
            result = view.trace(src, dst, self.case.port.number, self.case.protocol)
            for layer in result.layers:
                if layer.verdict == ALLOWED:
                    continue
                if layer.layer in self.targets:
                    return f"{src.id} -> {dst.id} is still denied at {layer.layer}: {layer.explanation}"
                if layer.layer in allowed_before:
                    return f"it would newly deny {src.id} -> {dst.id} at {layer.layer}: {layer.explanation}"
        return ""

    # 2. what works keeps working ----------------------------------------------------------------------
    def _forwarded(self, view: PolicyEngine, narrowing: list[Change]) -> str:
        """Re-trace the working connections the ``narrowing`` changes can reach (those that only widen an allow
        rule cannot deny anything: what they touch alone needs no second look)."""
        base = self.engine
        objects = upserts_of(narrowing)
        keys = {_policy_key(o) for o in objects} & view.changed_policies
        rules = [r for key in keys for eng in (view, base) if key in eng.policies for r in eng.policies[key].rules]
        istio_namespaces = {_namespace_of(o) for o in objects if o.get("kind") == "AuthorizationPolicy"}
        relabelled = {_namespace_of(o) for o in objects if o.get("kind") not in POLICY_KINDS}
        istio_everywhere = base.istio_root_namespace in istio_namespaces

        def touched(seen: Seen) -> bool:
            if seen.src.namespace in relabelled or seen.dst.namespace in relabelled:
                return True
            if istio_everywhere or seen.dst.namespace in istio_namespaces:
                return True
            return any((r.direction == EGRESS and r.selects(seen.src)) or
                       (r.direction == INGRESS and r.selects(seen.dst)) for r in rules)

        for seen in self.observed.baseline(base):
            if not seen.allowed or not touched(seen):
                continue
            src, dst = view.subject_for_endpoint(seen.src_ep), view.subject_for_endpoint(seen.dst_ep)
            if all(_still_allows(view, layer, src, dst, seen.port, seen.protocol) for layer in seen.allowed):
                continue
            result = view.trace(src, dst, seen.port, seen.protocol)  # only now: for the words
            broken = next(layer for layer in result.layers
                          if layer.layer in seen.allowed and layer.verdict != ALLOWED)
            return (f"it would break {seen.text}, which the input shows working: denied at {broken.layer} "
                    f"({broken.explanation})")
        return ""

    # 3. blast radius ----------------------------------------------------------------------------------
    def _cilium_blast(self, view: PolicyEngine, limit: int) -> list[NewPair]:
        out = []
        for item in view.newly_allowed(limit=limit + len(self.group_refs)):
            ports = item.ports
            if (item.src.workload_ref, item.dst.workload_ref) in self.group_refs:
                ports = ports - self.group_ports
            if ports:
                out.append(NewPair(item.src.workload_ref, item.dst.workload_ref, ports.text(), "cilium",
                                   _port_count(ports)))
        return out

    def _istio_blast(self, view: PolicyEngine, changed: list[dict], limit: int) -> list[NewPair]:
        if not changed:
            return []
        base = self.engine
        namespaces = {_namespace_of(o) for o in changed}
        if base.istio_root_namespace in namespaces:
            namespaces = set(view.inventory.namespaces)
        ports, every_port = _authz_ports(changed)
        if every_port:
            ports.add(self.case.port.number)
        principals = _authz_principals(changed)
        sources = [s for s in view.endpoints() if s.is_endpoint and s.namespace]
        out = []
        for ns in sorted(namespaces):
            for dst in _representatives(namespace_subjects(view, ns)):
                for src in sources:
                    if principals is not None and f"{src.namespace}/sa/{src.service_account}" not in principals:
                        continue
                    for port in sorted(ports):
                        if (src.workload_ref, dst.workload_ref) in self.group_refs and port == self.case.port.number:
                            continue
                        after = istio_layer.evaluate(view, src, dst, port, "TCP")
                        if after is None or after.verdict != ALLOWED:
                            continue
                        before = istio_layer.evaluate(base, src, dst, port, "TCP")
                        if before is not None and before.verdict != ALLOWED:
                            shown = "all ports (checked on " + str(port) + ")" if every_port else f"TCP {port}"
                            out.append(NewPair(src.workload_ref, dst.workload_ref, shown, "istio"))
                            if len(out) >= limit:
                                return out
        return out


def _namespace_of(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return (meta.get("name") if obj.get("kind") == "Namespace" else meta.get("namespace")) or "default"


def _policy_key(obj: dict) -> PolicyKey:
    meta = obj.get("metadata") or {}
    kind = obj.get("kind", "")
    namespace = "" if kind == "CiliumClusterwideNetworkPolicy" else meta.get("namespace") or "default"
    return PolicyKey(kind, namespace, meta.get("name") or "")


def _still_allows(view: PolicyEngine, layer: str, src: Subject, dst: Subject, port: int, protocol: str) -> bool:
    """One layer's verdict, without the explanation a full trace builds."""
    if layer == EGRESS:
        return view.direction_ports(EGRESS, src, dst, dst).contains(protocol, port)
    if layer == INGRESS:
        return view.direction_ports(INGRESS, dst, src, dst).contains(protocol, port)
    result = istio_layer.evaluate(view, src, dst, port, protocol)
    return result is None or result.verdict == ALLOWED


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
