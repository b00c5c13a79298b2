"""Candidate fixes of kind istio-authz: when the destination's sidecar refuses the source's principal.

The nearest ALLOW rule that lacks only the principal (or only the port) gets it added; otherwise a new ALLOW
AuthorizationPolicy admits exactly that principal on exactly that port of exactly the destination's pods.
A DENY that matched, or a source without a principal (no sidecar, or mTLS disabled), is not something an
ALLOW rule can fix: the reason says so.
"""

from __future__ import annotations

from hubbletui.policy.engine import PolicyEngine
from hubbletui.policy.istio import NearMiss
from hubbletui.policy.result import LayerResult
from hubbletui.policy.subjects import Subject
from hubbletui.suggest import jsonpatch
from hubbletui.suggest.candidates_policy import MANAGED_BY, free_name, policy_name
from hubbletui.suggest.model import ISTIO_AUTHZ, Change, ObjectRef, Patch
from hubbletui.suggest.peers import leaf_count
from hubbletui.suggest.workloads import exact_selector

KIND = "AuthorizationPolicy"


def istio_options(engine: PolicyEngine, layer: LayerResult, src: Subject, dst: Subject,
                  port: int) -> tuple[list[tuple[Change, ...]], list[str]]:
    decision = layer.decision
    principal = layer.mesh.source_principal if layer.mesh else None
    if layer.reason == "mtls-strict":
        return [], [(f"{dst.workload_ref} accepts only mTLS on {port} and {src.workload_ref} has no sidecar: bring "
                    "the source into the mesh; hubbletui does not suggest weakening mTLS")]
    if decision is not None and decision.action in ("DENY", "CUSTOM"):
        matched = decision.matched[0] if decision.matched else ""
        return [], [(f"{decision.action} policy {matched} refuses it; hubbletui does not "
                    "suggest weakening a deny or an external authorizer")]
    if not principal:
        return [], [(f"{src.workload_ref} carries no mTLS principal (no sidecar, or mTLS disabled): an "
                    "AuthorizationPolicy cannot admit it by principal")]
    options: list[tuple[Change, ...]] = []
    reasons: list[str] = []
    for near in decision.nearest if decision is not None else ():
        change = _extend(engine, near, principal, port)
        if change is not None:
            options.append((change,))
    new, why = _new_policy(engine, src, dst, principal, port)
    if new is None:
        reasons.append(why)
    else:
        options.append((new,))
    return options, reasons


def _extend(engine: PolicyEngine, near: NearMiss, principal: str, port: int) -> Change | None:
    fields = set(near.fields)
    ns, _, name = near.policy.partition("/")
    obj = engine.istio_objects.get(KIND, {}).get((ns, name))
    index = near.rule_index
    if obj is None or fields not in ({"principals"}, {"ports"}):
        return None
    rule = (((obj.get("spec") or {}).get("rules")) or [])[index]
    if fields == {"principals"}:
        section, key, value, what = "from", "source", principal, f"principal {principal}"
    else:
        section, key, value, what = "to", "operation", str(port), f"port {port}"
    field = "principals" if fields == {"principals"} else "ports"
    for j, entry in enumerate(rule.get(section) or []):
        values = ((entry or {}).get(key) or {}).get(field)
        if isinstance(values, list):
            op = {"op": "add", "path": jsonpatch.pointer(["spec", "rules", index, section, j, key, field, "-"]),
                  "value": value}
            ref = ObjectRef(KIND, ns, name)
            return Change(ISTIO_AUTHZ, ref, f"add {what} to AuthorizationPolicy {ns}/{name} rule {index}",
                          (jsonpatch.apply(obj, [op]),), 1, patch=Patch(ref, "json", [op]), widens=True)
    return None


def _new_policy(engine: PolicyEngine, src: Subject, dst: Subject, principal: str,
                port: int) -> tuple[Change | None, str]:
    selector, also = exact_selector(engine, dst)
    if not selector:
        return None, f"no new AuthorizationPolicy offered: {dst.workload_ref} has no labels to select it by"
    namespace = dst.namespace
    name = free_name(engine, KIND, namespace, policy_name(src, dst, port, "TCP", "istio", namespace))
    spec = {"selector": {"matchLabels": dict(selector)}, "action": "ALLOW",
            "rules": [{"from": [{"source": {"principals": [principal]}}],
                       "to": [{"operation": {"ports": [str(port)]}}]}]}
    obj = {"apiVersion": "security.istio.io/v1", "kind": KIND,
           "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)}, "spec": spec}
    notes = (f"its selector also matches {', '.join(also)}: no label tells them apart",) if also else ()
    ref = ObjectRef(KIND, namespace, name)
    summary = f"new AuthorizationPolicy {namespace}/{name} allowing {principal} on {port} of {dst.workload_ref}"
    return Change(ISTIO_AUTHZ, ref, summary, (obj,), leaf_count(spec), new_object=obj, notes=notes), ""
