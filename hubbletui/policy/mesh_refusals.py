"""Connections the mesh refuses: Cilium forwarded them, then the destination's Istio sidecar said no.

Hubble cannot show these as drops: the packets are delivered, and the sidecar closes the connection (or
answers 403) after the handshake. Two things together make a refusal here:

- the policy: the destination runs a sidecar, and Istio, evaluated on the cluster state, refuses the source
  (its AuthorizationPolicies admit no rule for the source's principal on that port, or a DENY matches; or
  the source has no sidecar and PeerAuthentication makes the port STRICT mTLS);
- the packets (`hubbletui.flows.connections`): the destination closed or reset the connections right after
  setup, or answered HTTP 403.

Policy and packets: "refused", high confidence. Policy alone: "policy would refuse", low confidence. Packets
alone are not a refusal: an admitted workload that closes connections quickly is just a server doing its job.

The verdict per (source, destination, port) is cached until the cluster state changes, so `refusals()` is
cheap to call on a timer; per flow, `observe` only feeds the connection tracker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from hubbletui.cluster.model import WORKLOAD_KINDS, ClusterState
from hubbletui.flows.connections import ConnectionTracker, Evidence, GroupKey, GroupStats
from hubbletui.flows.model import Endpoint, Flow
from hubbletui.policy import istio
from hubbletui.policy.labels import NAMESPACE_LABEL, NAMESPACE_LABELS_PREFIX, SERVICE_ACCOUNT_LABEL

LAYER = "istio"
AUTHZ_DENIED = "ISTIO_AUTHZ_DENIED"
MTLS_STRICT_PLAINTEXT = "ISTIO_MTLS_STRICT_PLAINTEXT"
REFUSED, POLICY_WOULD_REFUSE = "refused", "policy-would-refuse"
DEFAULT_ROOT_NAMESPACE = "istio-system"
# The sidecar's own ports (admin, inbound/outbound capture, HBONE, health, telemetry, DNS proxy): traffic to
# them is not the application's, and AuthorizationPolicy does not govern it.
ISTIO_PROXY_PORTS = frozenset({15000, 15001, 15004, 15006, 15008, 15009, 15020, 15021, 15053, 15090})
# Istio's protocol selection (Service port appProtocol, else the name's prefix before "-"): these get the
# HTTP filter chain, where RBAC answers 403; every other declared protocol is evaluated as TCP.
_HTTP_PROTOCOLS = frozenset({"http", "http2", "grpc", "grpc-web", "h2c", "kubernetes.io/h2c"})
_TCP_PROTOCOLS = frozenset({"tcp", "tls", "https", "mongo", "mysql", "redis", "udp", "kubernetes.io/ws",
                            "kubernetes.io/wss"})
_MAX_CACHE = 20_000


# ---------------------------------------------------------------------------------------------- endpoints

@dataclass(frozen=True, eq=False)
class MeshSide:
    """One end of a connection as Istio sees it."""

    ref: str  # workload ref, as the flow groups name it
    namespace: str
    labels: Mapping[str, str]  # the pod's (or pod template's) own labels, for AuthorizationPolicy selectors
    service_account: str
    in_mesh: bool
    mesh_reason: str
    ip: str
    pod: Mapping | None = field(default=None, repr=False, compare=False)  # the Pod (or a stand-in from a template)
    known_from: str = "cluster state"  # or "pod template", "flow labels"

    @property
    def is_workload(self) -> bool:
        return bool(self.namespace)


class _Index:
    """The cluster state's objects this module reads, indexed once per state generation."""

    def __init__(self, state: ClusterState):
        self.generation = state.generation
        self.pods = {(o["metadata"].get("namespace") or "default", o["metadata"]["name"]): o
                     for o in state.list("Pod")}
        self.namespaces = {o["metadata"]["name"]: o for o in state.list("Namespace")}
        self.workloads: dict[tuple[str, str], dict] = {}
        for kind in WORKLOAD_KINDS:
            for o in state.list(kind):
                self.workloads.setdefault((o["metadata"].get("namespace") or "default", o["metadata"]["name"]),
                                          {"kind": kind, **o})
        self.services: dict[str, list[dict]] = {}
        for o in state.list("Service"):
            self.services.setdefault(o["metadata"].get("namespace") or "default", []).append(o)
        self.authorization_policies = state.list("AuthorizationPolicy")
        self.peer_authentications = state.list("PeerAuthentication")


def _d(value) -> dict:
    return value if isinstance(value, dict) else {}


def _flow_labels(ep: Endpoint) -> tuple[dict[str, str], dict[str, str], str]:
    """(pod labels, namespace labels, service account) recovered from Hubble's k8s: labels."""
    pod, ns = {}, {}
    sa = ""
    for label in ep.labels:
        source, _, rest = label.partition(":")
        if source != "k8s":
            continue
        key, _, value = rest.partition("=")
        if key.startswith(NAMESPACE_LABELS_PREFIX):
            ns[key[len(NAMESPACE_LABELS_PREFIX):]] = value
        elif key == SERVICE_ACCOUNT_LABEL:
            sa = value
        elif not key.startswith("io.cilium.k8s.") and key != NAMESPACE_LABEL:
            pod[key] = value
    return pod, ns, sa


def _template_pod(workload: dict, namespace: str) -> dict:
    spec = _d(workload.get("spec"))
    if workload.get("kind") == "CronJob":
        spec = _d(_d(spec.get("jobTemplate")).get("spec"))
    template = _d(spec.get("template"))
    meta = _d(template.get("metadata"))
    return {"metadata": {**meta, "namespace": namespace}, "spec": _d(template.get("spec"))}


def resolve(ep: Endpoint, index: _Index) -> MeshSide:
    """Find the endpoint's pod (else its workload's template, else what the flow's labels say)."""
    ref = ep.workload_ref
    if not ep.pod and not ep.workloads:
        return MeshSide(ref, "", {}, "", False, "not a pod: it has no sidecar", ep.ip)
    namespace = ep.namespace
    ns_obj = index.namespaces.get(namespace)
    pod = index.pods.get((namespace, ep.pod))
    known_from = "cluster state"
    if pod is None:
        workload = next((index.workloads[(namespace, name)] for _, name in ep.workloads
                         if (namespace, name) in index.workloads), None)
        if workload is not None:
            pod, known_from = _template_pod(workload, namespace), "pod template"
    if pod is None:
        labels, ns_labels, sa = _flow_labels(ep)
        if ns_obj is None:
            ns_obj = {"metadata": {"name": namespace, "labels": ns_labels}}
        pod = {"metadata": {"name": ep.pod, "namespace": namespace, "labels": labels},
               "spec": {"serviceAccountName": sa or "default"}}
        known_from = "flow labels"
    meta, spec = _d(pod.get("metadata")), _d(pod.get("spec"))
    membership = istio.mesh_membership(pod, ns_obj)
    sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    labels = {str(k): str(v) for k, v in _d(meta.get("labels")).items()}
    return MeshSide(ref, namespace, labels, str(sa), membership.in_mesh, membership.reason, ep.ip, pod, known_from)


def _selects(selector: Mapping, labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(str(k)) == str(v) for k, v in selector.items())


def _container_port(pod: Mapping | None, name: str) -> int | None:
    for container in _d(pod).get("spec", {}).get("containers") or []:
        for port in _d(container).get("ports") or []:
            if _d(port).get("name") == name:
                return _d(port).get("containerPort")
    return None


def port_protocol(dst: MeshSide, port: int, index: _Index) -> tuple[str | None, str]:
    """("http" | "tcp" | None, why): how Istio treats `port` of `dst`, from the Services that select it.

    None: no Service declares the protocol, so Istio sniffs it from the first bytes.
    """
    for svc in sorted(index.services.get(dst.namespace, ()), key=lambda s: s["metadata"]["name"]):
        spec = _d(svc.get("spec"))
        if not _selects(_d(spec.get("selector")), dst.labels):
            continue
        for sp in spec.get("ports") or []:
            sp = _d(sp)
            target = sp.get("targetPort", sp.get("port"))
            number = _container_port(dst.pod, target) if isinstance(target, str) and not target.isdigit() else target
            if str(number) != str(port) or str(sp.get("protocol") or "TCP").upper() != "TCP":
                continue
            declared = str(sp.get("appProtocol") or "").lower() or str(sp.get("name") or "").lower().split("-")[0]
            where = f"Service {svc['metadata']['name']} port {sp.get('name') or sp.get('port')}"
            if declared in _HTTP_PROTOCOLS:
                return "http", f"{where} declares {declared}"
            if declared in _TCP_PROTOCOLS:
                return "tcp", f"{where} declares {declared}"
    return None, "no Service port declares the protocol, so Istio sniffs it"


def _request_of(url: str, method: str) -> dict:
    parts = urlsplit(url)
    return {"method": method, "path": parts.path or "/", "host": parts.netloc}


# ---------------------------------------------------------------------------------------------- results

@dataclass(frozen=True)
class MeshRefusal:
    """A group of forwarded connections that Istio refuses, keyed like explain's drop groups."""

    source: str  # initiator workload ref
    destination: str
    port: int
    protocol: str
    reason: str  # ISTIO_AUTHZ_DENIED | ISTIO_MTLS_STRICT_PLAINTEXT
    status: str  # refused | policy-would-refuse
    confidence: str  # high (policy and packets agree) | low (policy only)
    summary: str
    evidence: Evidence
    mtls: istio.MtlsDecision
    decision: istio.IstioDecision | None  # the AuthorizationPolicy verdict (None for STRICT plaintext)
    source_principal: str | None  # None: plaintext (no sidecar, or mTLS DISABLEd)
    source_namespace: str
    source_service_account: str
    source_in_mesh: bool
    source_mesh_reason: str
    destination_namespace: str
    destination_labels: Mapping[str, str]
    destination_mesh_reason: str
    requests: tuple[str, ...] = ()  # "GET /admin": refused requests, when only some are (a conditional DENY)
    notes: tuple[str, ...] = ()
    layer: str = LAYER

    @property
    def key(self) -> tuple[str, str, int, str, str]:
        """(source workload, destination workload, port, protocol, reason): a drop group's key."""
        return self.source, self.destination, self.port, self.protocol, self.reason

    @property
    def conn(self) -> tuple[str, str, str]:
        """(source, destination, "port/PROTO"): the FlowStore's ConnKey fields."""
        return self.source, self.destination, f"{self.port}/{self.protocol}"

    @property
    def count(self) -> int:
        """How many times the source tried: connection attempts, else refused HTTP requests."""
        return max(self.evidence.attempts, self.evidence.http_403)

    def evidence_lines(self) -> tuple[str, ...]:
        return self.evidence.lines()

    def to_dict(self) -> dict:
        return {
            "layer": self.layer, "reason": self.reason, "source": self.source, "destination": self.destination,
            "port": self.port, "protocol": self.protocol, "status": self.status, "confidence": self.confidence,
            "summary": self.summary, "count": self.count, "evidence": self.evidence.to_dict(),
            "decision": self.decision.to_dict() if self.decision else None, "mtls": self.mtls.to_dict(),
            "source_principal": self.source_principal, "source_namespace": self.source_namespace,
            "source_service_account": self.source_service_account, "source_in_mesh": self.source_in_mesh,
            "source_mesh_reason": self.source_mesh_reason, "destination_namespace": self.destination_namespace,
            "destination_labels": dict(self.destination_labels),
            "destination_mesh_reason": self.destination_mesh_reason, "requests": list(self.requests),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class _Verdict:
    """Istio's answer for one (source, destination, port), before the evidence is weighed."""

    reason: str  # AUTHZ_DENIED, MTLS_STRICT_PLAINTEXT, or "" (admitted)
    mtls: istio.MtlsDecision
    decision: istio.IstioDecision | None
    principal: str | None
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------- detector

class MeshRefusalDetector:
    """Feed it flows with `observe`; ask `refusals()` whenever a front end redraws or a report is written.

    `cluster` is the ClusterState (snapshot or live; PeerAuthentication and AuthorizationPolicy are read from
    it as they change), or any object that carries one as `.state`.
    """

    def __init__(self, cluster, *, root_namespace: str = DEFAULT_ROOT_NAMESPACE,
                 trust_domain: str = istio.DEFAULT_TRUST_DOMAIN, tracker: ConnectionTracker | None = None):
        state = cluster if isinstance(cluster, ClusterState) else getattr(cluster, "state", None)
        if not isinstance(state, ClusterState):
            raise TypeError("MeshRefusalDetector needs a ClusterState (or an object with one as .state)")
        self.state = state
        self.root_namespace = root_namespace
        self.trust_domain = trust_domain
        self.tracker = tracker or ConnectionTracker()
        self.observe = self.tracker.observe  # the per-flow path: one bound call, no wrapper
        self._index: _Index | None = None
        self._sides: dict[Endpoint, MeshSide] = {}
        self._verdicts: dict[tuple, _Verdict] = {}

    def observe_events(self, events: Iterable) -> int:
        """Feed a batch of events (non-flows are skipped); returns how many flows were fed."""
        n = 0
        observe = self.observe
        for event in events:
            if isinstance(event, Flow):
                observe(event)
                n += 1
        return n

    # ------------------------------------------------------------------------------------------------ queries

    def refusals(self) -> list[MeshRefusal]:
        """Every flow group Istio refuses, most attempts first."""
        self.tracker.settle()
        found = [r for r in map(self._classify_group, self.tracker.groups()) if r is not None]
        found.sort(key=lambda r: (r.status != REFUSED, -r.count, r.key))
        return found

    def classify(self, source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP") -> MeshRefusal | None:
        """The refusal for one connection (e.g. one the FlowStore reports as new), with what evidence the
        tracker holds for its group; None when Istio admits it or is not in the way."""
        if protocol != "TCP":
            return None  # Istio's sidecar handles TCP only
        key = GroupKey(source.workload_ref, destination.workload_ref, port, protocol)
        group = self.tracker.group(key)
        if group is None:
            group = GroupStats(key, source, destination, 0)
        return self._classify_group(group)

    # ------------------------------------------------------------------------------------------------ internals

    def _fresh_index(self) -> _Index:
        if self._index is None or self._index.generation != self.state.generation:
            self._index = _Index(self.state)
            self._sides.clear()
            self._verdicts.clear()
        return self._index

    def _side(self, ep: Endpoint, index: _Index) -> MeshSide:
        side = self._sides.get(ep)
        if side is None:
            if len(self._sides) >= _MAX_CACHE:
                self._sides.clear()
            side = self._sides[ep] = resolve(ep, index)
        return side

    def _classify_group(self, group: GroupStats) -> MeshRefusal | None:
        key = group.key
        if key.protocol != "TCP" or key.port in ISTIO_PROXY_PORTS:
            return None
        index = self._fresh_index()
        dst = self._side(group.destination, index)
        if not dst.in_mesh:
            return None
        src = self._side(group.source, index)
        if src.ref == dst.ref and src.namespace:
            return None  # a workload talking to itself passes its sidecar's inbound listener on loopback
        evidence = group.freeze()
        protocol, protocol_note = ("http", "HTTP seen in L7 flows") if group.http_seen else \
            port_protocol(dst, key.port, index)
        verdict = self._verdict(src, dst, key.port, protocol)
        notes = list(verdict.notes)
        requests: tuple[str, ...] = ()
        if protocol is None and verdict.reason == AUTHZ_DENIED:
            # sniffed port: refused as TCP; is it admitted as HTTP?
            as_http = self._verdict(src, dst, key.port, "http")
            if not as_http.reason:
                if not evidence.quick_closes or evidence.http_403:
                    return None
                notes.append(f"{protocol_note}: refused as TCP, admitted as HTTP; the connections closed right "
                             "after setup say TCP")
        elif protocol is None:
            notes.append(protocol_note)
        if not verdict.reason and verdict.decision is not None and verdict.decision.conditional and evidence.forbidden:
            # a DENY for some requests only: were the 403s those requests?
            for sample in reversed(evidence.forbidden):
                request = _request_of(sample.url, sample.method)
                refused = self._verdict(src, dst, key.port, "http", request)
                if refused.reason:
                    verdict = refused
                    requests = tuple(dict.fromkeys(f"{s.method} {_request_of(s.url, s.method)['path']}"
                                                   for s in evidence.forbidden))
                    break
        if not verdict.reason:
            return None
        return self._refusal(group.key, src, dst, verdict, evidence, requests, notes)

    def _verdict(self, src: MeshSide, dst: MeshSide, port: int, protocol: str | None,
                 request: Mapping | None = None) -> _Verdict:
        cache_key = (src.namespace, src.service_account, src.in_mesh, src.ip, dst.namespace,
                     frozenset(dst.labels.items()), port, protocol, tuple(sorted(request.items())) if request else None)
        cached = self._verdicts.get(cache_key)
        if cached is not None:
            return cached
        index = self._index
        assert index is not None
        mtls = istio.mtls_decision(index.peer_authentications, self.root_namespace, dst.namespace, dst.labels, port)
        if not src.in_mesh and mtls.mode == "STRICT":
            verdict = _Verdict(MTLS_STRICT_PLAINTEXT, mtls, None, None)
        else:
            principal = None
            notes: tuple[str, ...] = ()
            if src.in_mesh and mtls.mode != "DISABLE":
                principal = istio.principal_of(src.namespace, src.service_account, self.trust_domain)
            elif src.in_mesh:
                notes = (f"mTLS is DISABLEd on port {port} ({mtls.reason}): the source's sidecar connects in "
                         "plaintext and carries no principal",)
            decision = istio.evaluate_authz(index.authorization_policies, self.root_namespace, dst.namespace,
                                            dst.labels, principal, src.namespace or None, port,
                                            protocol == "http", request, source_ip=src.ip or None)
            verdict = _Verdict("" if decision.allowed else AUTHZ_DENIED, mtls, decision, principal, notes)
        if len(self._verdicts) >= _MAX_CACHE:
            self._verdicts.clear()
        self._verdicts[cache_key] = verdict
        return verdict

    def _refusal(self, key: GroupKey, src: MeshSide, dst: MeshSide, verdict: _Verdict, evidence: Evidence,
                 requests: tuple[str, ...], notes: list[str]) -> MeshRefusal:
        seen = evidence.refusal_seen
        where = f"{dst.ref}:{key.port}/{key.protocol}"
        if verdict.reason == MTLS_STRICT_PLAINTEXT:
            summary = (f"plaintext to a STRICT mTLS workload: {src.ref} has no sidecar ({src.mesh_reason}) and "
                       f"{where} accepts only mTLS: {verdict.mtls.reason}")
        else:
            assert verdict.decision is not None
            summary = f"refused by Istio at {where}: {verdict.decision.reason}"
            if requests:
                summary += f" (refused requests: {', '.join(requests)})"
        if not seen:
            summary = "policy would refuse (no refusal seen in the packets yet): " + summary
            if evidence.carried_on and not evidence.quick_closes:
                notes.append(f"{evidence.carried_on} connection(s) carried on past the handshake: the cluster state "
                             "may not match the cluster that was recorded")
        for side, name in ((src, "source"), (dst, "destination")):
            if side.known_from != "cluster state" and side.namespace:
                notes.append(f"the {name} {side.ref} is not in the cluster state; read from its "
                             f"{side.known_from}")
        return MeshRefusal(
            key.source, key.destination, key.port, key.protocol, verdict.reason,
            REFUSED if seen else POLICY_WOULD_REFUSE, "high" if seen else "low", summary, evidence,
            verdict.mtls, verdict.decision, verdict.principal, src.namespace, src.service_account if src.namespace
            else "", src.in_mesh, src.mesh_reason, dst.namespace, dict(dst.labels), dst.mesh_reason, requests,
            tuple(dict.fromkeys(notes)))
