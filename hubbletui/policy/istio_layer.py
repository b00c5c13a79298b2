"""The Istio layer of a trace: when the destination runs a sidecar, its PeerAuthentication mode and its
AuthorizationPolicies decide after Cilium has let the packet through (Hubble still shows FORWARDED).

The evaluation itself lives in `hubbletui.policy.istio` (pure functions over the raw objects); this module
feeds it what the engine knows about both sides: mesh membership, the source's principal, the port's protocol.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from hubbletui.flows.labels import LabelSet, NAMESPACE_LABEL, match_labels_selector
from hubbletui.cluster.model import WORKLOAD_KINDS
from hubbletui.policy import istio
from hubbletui.policy.inventory import pod_template
from hubbletui.policy.istio_capture import uncaptured_reason
from hubbletui.policy.labels import NAMESPACE_LABELS_PREFIX
from hubbletui.policy.records import Condition, Hit, Lack, MeshSides, NearRule
from hubbletui.policy.result import ALLOWED, DENIED, LayerResult
from hubbletui.policy.subjects import Subject

if TYPE_CHECKING:
    from hubbletui.policy.engine import PolicyEngine

# Service port names / appProtocols Istio reads as HTTP (istio.io "Explicit protocol selection")
_HTTP_PROTOCOLS = ("http", "http2", "https", "grpc", "grpc-web")
_TCP_PROTOCOLS = ("tcp", "tls", "mongo", "mysql", "redis", "udp", "unsupported")
CILIUM_LABEL_PREFIX = "io.cilium.k8s."  # labels Cilium adds to an identity (namespace labels, SA, cluster)


def pod_like(subject: Subject) -> dict | None:
    """The Pod; for a workload (or a pod the state only knows through its workload) its pod template; for a
    subject made from Hubble's labels, a pod with those labels. None when nothing is known."""
    obj = subject.obj
    if obj is None:
        if subject.kind != "flow":
            return None
        return {"metadata": {"name": subject.name, "namespace": subject.namespace,
                             "labels": _identity_pod_labels(subject.labels)}}
    if obj.get("kind") in WORKLOAD_KINDS:
        return pod_template(obj["kind"], obj)
    return obj


def _identity_pod_labels(labels: LabelSet) -> dict[str, str]:
    """The pod's own labels among its identity labels (those Cilium's label filter kept)."""
    return {k[4:]: v for k, v in labels.full.items() if k.startswith("k8s:")
            and k[4:] != NAMESPACE_LABEL and not k[4:].startswith(CILIUM_LABEL_PREFIX)}


def k8s_labels(subject: Subject) -> dict[str, str]:
    obj = pod_like(subject)
    if obj is not None:
        return {str(k): str(v) for k, v in ((obj.get("metadata") or {}).get("labels") or {}).items()}
    return _identity_pod_labels(subject.labels)


def membership(engine: PolicyEngine, subject: Subject) -> istio.MeshMembership | None:
    if subject.kind not in ("pod", "workload", "flow") or not subject.namespace:
        return None
    if "mesh" not in subject.cache:
        # a namespace change rebuilds its subjects, so the answer can live on the subject
        members = engine.inventory.namespaces.get(subject.namespace)
        namespace = members.obj if members and members.obj else _namespace_from_identity(subject)
        subject.cache["mesh"] = istio.mesh_membership(pod_like(subject), namespace)
    return subject.cache["mesh"]


def _namespace_from_identity(subject: Subject) -> dict:
    """The namespace as the identity labels describe it (Cilium copies the namespace's labels into them)."""
    labels = {k[4 + len(NAMESPACE_LABELS_PREFIX):]: v for k, v in subject.labels.full.items()
              if k.startswith("k8s:" + NAMESPACE_LABELS_PREFIX)}
    return {"metadata": {"name": subject.namespace, "labels": labels}}


def evaluate(engine: PolicyEngine, src: Subject, dst: Subject, port: int, protocol: str) -> LayerResult | None:
    """The Istio layer, or None when the destination has no sidecar (or the traffic is not TCP)."""
    dst_mesh = membership(engine, dst)
    if dst_mesh is None or not dst_mesh.in_mesh or protocol != "TCP":
        return None
    src_mesh = membership(engine, src)
    src_in_mesh = bool(src_mesh and src_mesh.in_mesh)
    from_host = src.labels.get("reserved", "host") is not None or (src.host_network and src.node == dst.node)
    skipped = uncaptured_reason(dst.obj, dst.named_ports, port, from_host)
    if skipped:
        return LayerResult("istio", dst.id, ALLOWED, "istio-not-captured", skipped,
                           mesh=MeshSides(dst_mesh.reason))
    labels = k8s_labels(dst)
    root = engine.istio_root_namespace
    peer_auths = engine.policy_objects("PeerAuthentication")
    mtls = istio.mtls_decision(peer_auths, root, dst.namespace, labels, port)
    principal = istio.principal_of(src.namespace, src.service_account) if src_in_mesh and src.namespace else None
    sides = MeshSides(dst_mesh.reason, src_mesh.reason if src_mesh else f"{src.id} is not a pod of the cluster",
                      mtls, principal)
    if mtls.mode == "STRICT" and not src_in_mesh:
        return LayerResult("istio", dst.id, DENIED, "mtls-strict",
                           f"{dst.id} accepts only mTLS ({mtls.reason}) and {src.id} has no sidecar to speak it: "
                           "the connection is reset", mesh=sides)
    if mtls.mode == "DISABLE" and principal:
        principal = None  # plaintext: the request carries no peer identity
    is_http, how = port_protocol(engine, dst, port)
    sides = replace(sides, source_principal=principal, http=how)
    applied, refused = engine.authorization_policies()
    decision = istio.evaluate_authz(applied, root, dst.namespace, labels,
                                    principal, src.namespace if principal else None, port, is_http,
                                    source_ip=src.ip or None)
    matched = [Hit(f"AuthorizationPolicy/{decision.matched[0]}", f"spec.rules[{decision.matched[1]}]",
                   decision.action)] if decision.matched else []
    nearest = [NearRule(Hit(f"AuthorizationPolicy/{m.policy}", f"spec.rules[{m.rule_index}]"),
                        tuple(Lack("peer", f, t) for f, t in zip(m.fields, m.lacks, strict=True)))
               for m in decision.nearest]
    notes = [f"AuthorizationPolicy/{istio.policy_ref(obj)} is rejected by Istio ({why}): it is not applied"
             for obj, why in refused if istio.policy_applies(obj, root, dst.namespace, labels)]
    notes += list(decision.notes)
    conditions = []
    if decision.conditional:
        notes.append("the verdict depends on the HTTP request (method, path, headers): see the notes above")
        conditions.append(Condition("istio-http", "Istio's authorization depends on each HTTP request "
                                    "(method, path, headers)"))
    if decision.action == "CUSTOM":
        conditions.append(Condition("istio-custom", "an Istio CUSTOM policy applies: the external "
                                    "authorizer decides each request"))
    # Envoy's RBAC filter answers HTTP with 403 "RBAC: access denied"; on TCP it just closes the connection
    refusal = "RBAC: access denied" if is_http else "connection closed (TCP RBAC)"
    reason = decision.reason
    if not decision.allowed and not is_http:
        reason += "; on TCP the sidecar closes the connection (the client sees a reset or EOF, not a 403)"
    return LayerResult("istio", dst.id, ALLOWED if decision.allowed else DENIED, f"istio-{decision.action.lower()}",
                       reason, drop_reason="" if decision.allowed else refusal,
                       isolated_by=[f"AuthorizationPolicy/{r}" for r in decision.applicable_allow],
                       allowed_by=matched if decision.allowed else [],
                       denied_by=matched if not decision.allowed else [], nearest=nearest, notes=notes,
                       mesh=sides, conditions=conditions if decision.allowed else [], decision=decision)


def port_protocol(engine: PolicyEngine, dst: Subject, port: int) -> tuple[bool, str]:
    """Whether Istio treats ``port`` of ``dst`` as HTTP, from the Services in front of it; unnamed ports are
    sniffed by Istio, so HTTP is assumed (and said)."""
    labels = LabelSet({f"k8s:{k}": v for k, v in k8s_labels(dst).items()})
    for svc in sorted(engine.services.values(), key=lambda s: (s.get("metadata") or {}).get("name") or ""):
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        if (meta.get("namespace") or "default") != dst.namespace or not spec.get("selector"):
            continue
        if not match_labels_selector({str(k): str(v) for k, v in spec["selector"].items()}).matches(labels):
            continue
        for sp in spec.get("ports") or []:
            target = sp.get("targetPort", sp.get("port"))
            if isinstance(target, str) and not target.isdigit():
                targets = [p for p, _ in dst.named_ports.get(target, ())]
            else:
                targets = [int(target)] if target is not None else []
            if port not in targets:
                continue
            declared = str(sp.get("appProtocol") or "").lower() or str(sp.get("name") or "").split("-")[0].lower()
            svc_name = f"Service {dst.namespace}/{meta.get('name')}"
            if declared in _HTTP_PROTOCOLS:
                return True, f"{svc_name} declares port {sp.get('port')} as {declared}"
            if declared in _TCP_PROTOCOLS:
                return False, f"{svc_name} declares port {sp.get('port')} as {declared}"
    return True, "no Service declares this port's protocol; Istio sniffs it, HTTP is assumed"
