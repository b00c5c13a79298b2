"""Connections the mesh refuses: Cilium forwarded them, then the destination's Istio sidecar said no.

Hubble cannot show these as drops: the packets are delivered, and the sidecar closes the connection (or
answers 403) after the handshake. Two things together make a refusal here:

- the policy: the `istio` layer of the engine's trace (`hubbletui.policy.istio_layer`) denies the source: the
  destination runs a sidecar and its AuthorizationPolicies admit no rule for the source's principal on that
  port, or a DENY matches; or the source has no sidecar and PeerAuthentication makes the port STRICT mTLS;
- the packets (`hubbletui.diagnose.connections`): the destination closed or reset the connections right after
  setup, or answered HTTP 403.

Policy and packets: "refused", high confidence. Policy alone: "policy would refuse", low confidence. Packets
alone are not a refusal: an admitted workload that closes connections quickly is just a server doing its job.

Two cases the connection-level verdict cannot settle are decided from the packets: an HTTP port whose DENY
refuses only some requests (the 403'd requests are evaluated one by one), and a port whose protocol no Service
declares (Istio sniffs it; the engine assumes HTTP, and connections closed right after setup with no HTTP seen
say it was TCP).

Verdicts are cached until the cluster state changes, so `refusals()` is cheap on a timer; per flow, `observe`
only feeds the connection tracker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from hubbletui.diagnose.connections import ConnectionTracker, Evidence, GroupStats
from hubbletui.flows.conn import Conn, GroupKey, Port
from hubbletui.flows.model import Endpoint, Flow
from hubbletui.policy import istio, istio_layer
from hubbletui.policy.engine import PolicyEngine
from hubbletui.policy.result import DENIED, LayerResult
from hubbletui.policy.subjects import Subject

LAYER = "istio"
AUTHZ_DENIED = "ISTIO_AUTHZ_DENIED"
MTLS_STRICT_PLAINTEXT = "ISTIO_MTLS_STRICT_PLAINTEXT"
REFUSED, POLICY_WOULD_REFUSE = "refused", "policy-would-refuse"
DEFAULT_ROOT_NAMESPACE = "istio-system"
# The sidecar's own ports (admin, inbound/outbound capture, HBONE, health, telemetry, DNS proxy): traffic to
# them is not the application's, and AuthorizationPolicy does not govern it.
ISTIO_PROXY_PORTS = frozenset({15000, 15001, 15004, 15006, 15008, 15009, 15020, 15021, 15053, 15090})
_SNIFFED = "no Service declares"  # how istio_layer.port_protocol words a port Istio sniffs
_MAX_CACHE = 20_000


@dataclass(frozen=True)
class MeshRefusal:
    """A group of forwarded connections that Istio refuses, keyed like explain's drop groups."""

    conn: Conn  # initiator and responder workload refs (as the FlowStore and explain name them), the port
    reason: str  # ISTIO_AUTHZ_DENIED | ISTIO_MTLS_STRICT_PLAINTEXT
    status: str  # refused | policy-would-refuse
    confidence: str  # high (policy and packets agree) | low (policy only)
    summary: str
    evidence: Evidence
    istio: LayerResult  # the trace's istio layer for this connection (what `hubbletui trace` shows)
    decision: istio.IstioDecision | None  # the AuthorizationPolicy verdict; None for STRICT plaintext
    mtls: istio.MtlsDecision | None  # the mode on this port and the PeerAuthentication that set it
    source_principal: str | None  # None: plaintext (no sidecar, or mTLS DISABLEd)
    requests: tuple[str, ...] = ()  # "GET /admin": the refused requests, when Istio refuses only some
    notes: tuple[str, ...] = ()
    src: Subject | None = field(default=None, compare=False, repr=False)  # the engine's subjects, for fixes
    dst: Subject | None = field(default=None, compare=False, repr=False)
    layer: str = LAYER

    @property
    def key(self) -> GroupKey:
        """The group these connections form: forwarded by Cilium, refused for `reason`."""
        return GroupKey(self.conn, "FORWARDED", self.reason)

    # the connection's parts, as the JSON report names them
    source = property(lambda self: self.conn.src)
    destination = property(lambda self: self.conn.dst)
    port = property(lambda self: self.conn.port.number)
    protocol = property(lambda self: self.conn.port.protocol)

    @property
    def count(self) -> int:
        """How many times the source tried: connection attempts, or refused HTTP requests if more."""
        return max(self.evidence.attempts, self.evidence.http_403)

    def evidence_lines(self) -> tuple[str, ...]:
        return self.evidence.lines()

    def detail_lines(self) -> list[str]:
        """The whole explanation for a text report, one fact a line (names from the cluster included: callers
        pass them through `untrusted.printable`)."""
        sides = self.istio.mesh
        out = [f"source principal: {self.source_principal} ({sides.source_in_mesh})" if self.source_principal
               else f"source: plaintext, no principal ({sides.source_in_mesh})",
               f"destination {self.destination} runs a sidecar: {sides.destination_in_mesh}",
               f"mTLS on port {self.port}: {self.mtls.reason if self.mtls else None}"]
        decision = self.decision
        if decision is not None:
            matched = decision.matched
            if decision.action == "DENY" and matched:
                out.append(f"DENY policy {matched[0]} rule {matched[1]} matches")
            if decision.applicable_allow:
                out.append("ALLOW policies that apply: " + ", ".join(decision.applicable_allow))
            for near in decision.nearest[:3]:
                out.append(f"nearest: {near.policy} rule {near.rule_index} lacks {'; '.join(near.lacks)}")
        out += [f"evidence: {line}" for line in self.evidence.lines()] or ["evidence: none in the flows yet"]
        out += [f"note: {note}" for note in (list(decision.notes if decision else ()) + list(self.notes))]
        return out

    def to_dict(self) -> dict:
        return {
            "layer": self.layer, "reason": self.reason, "source": self.source, "destination": self.destination,
            "port": self.port, "protocol": self.protocol, "status": self.status, "confidence": self.confidence,
            "summary": self.summary, "count": self.count, "evidence": self.evidence.to_dict(),
            "decision": self.decision.to_dict() if self.decision else None, "mtls": self.mtls.to_dict() if self.mtls else {},
            "source_principal": self.source_principal,
            "requests": list(self.requests), "notes": list(self.notes), "istio": self.istio.to_dict(),
        }


def _request_of(url: str, method: str) -> dict:
    parts = urlsplit(url)
    return {"method": method, "path": parts.path or "/", "host": parts.netloc}


class MeshRefusalDetector:
    """Feed it flows with `observe`; ask `refusals()` whenever a front end redraws or a report is written.

    `engine`: the run's one PolicyEngine (its Istio root namespace, cluster name and enforcement mode apply).
    """

    def __init__(self, engine: PolicyEngine, *, tracker: ConnectionTracker | None = None,
                 engine_at: Callable[[int], PolicyEngine] | None = None):
        self.engine = self.base_engine = engine
        self._at = engine_at  # with a cluster history: a group is judged by the state at its latest refusal
        self.tracker = tracker or ConnectionTracker()
        self.observe = self.tracker.observe  # the per-flow path: one bound call, no wrapper
        self._generation = -1
        self._subjects: dict[Endpoint, Subject] = {}
        self._layers: dict[tuple, LayerResult | None] = {}
        self._decisions: dict[tuple, istio.IstioDecision] = {}

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
        """Every flow group Istio refuses: confirmed ones first, then by attempts."""
        self.tracker.settle()
        found = [r for r in map(self._classify_group, self.tracker.groups()) if r is not None]
        found.sort(key=lambda r: (r.status != REFUSED, -r.count, r.key))
        return found

    def classify(self, source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP") -> MeshRefusal | None:
        """The refusal for one connection (say one the FlowStore reports as new), with whatever evidence the
        tracker holds for its group; None when Istio admits it or is not in the way."""
        if protocol != "TCP":
            return None  # the sidecar's inbound listeners are TCP
        key = Conn(source.workload_ref, destination.workload_ref, Port(port, protocol))
        return self._classify_group(self.tracker.group(key) or GroupStats(key, source, destination, 0))

    # ------------------------------------------------------------------------------------------------ internals

    def _fresh(self) -> None:
        generation = (self.engine.state.generation, id(self.engine))
        if generation != self._generation:
            self._generation = generation
            self._subjects.clear()
            self._layers.clear()
            self._decisions.clear()

    def _subject(self, ep: Endpoint) -> Subject:
        subject = self._subjects.get(ep)
        if subject is None:
            if len(self._subjects) >= _MAX_CACHE:
                self._subjects.clear()
            subject = self._subjects[ep] = self.engine.subject_for_endpoint(ep)
        return subject

    def _istio_layer(self, src: Subject, dst: Subject, port: int) -> LayerResult | None:
        key = (src.id, src.labels.key, dst.id, dst.labels.key, port)
        if key not in self._layers:
            if len(self._layers) >= _MAX_CACHE:
                self._layers.clear()
            self._layers[key] = istio_layer.evaluate(self.engine, src, dst, port, "TCP")
        return self._layers[key]

    def _decide(self, src: Subject, dst: Subject, port: int, principal: str | None, is_http: bool,
                request: dict | None = None) -> istio.IstioDecision:
        """Istio's AuthorizationPolicy verdict where the connection-level layer could not settle it."""
        key = (dst.id, dst.labels.key, port, principal, src.namespace, src.ip, is_http,
               tuple(sorted(request.items())) if request else None)
        decision = self._decisions.get(key)
        if decision is None:
            if len(self._decisions) >= _MAX_CACHE:
                self._decisions.clear()
            engine = self.engine
            decision = self._decisions[key] = istio.evaluate_authz(
                engine.policy_objects("AuthorizationPolicy"), engine.istio_root_namespace, dst.namespace,
                istio_layer.k8s_labels(dst), principal, src.namespace if principal else None, port, is_http,
                request, source_ip=src.ip or None)
        return decision

    def _classify_group(self, group: GroupStats) -> MeshRefusal | None:
        key = group.key
        if key.port.protocol != "TCP" or key.port.number in ISTIO_PROXY_PORTS:
            return None
        if self._at is not None:
            self.engine = self._at(group.freeze().last_refused_ns)
        self._fresh()
        src, dst = self._subject(group.source), self._subject(group.destination)
        if src.id == dst.id:
            return None  # a pod talking to itself goes through its own sidecar's loopback path
        layer = self._istio_layer(src, dst, key.port.number)
        if layer is None:
            return None  # no sidecar at the destination: Istio is not in the way
        sides = layer.mesh
        principal = sides.source_principal
        evidence = group.freeze()
        decision = layer.decision
        requests: tuple[str, ...] = ()
        notes: list[str] = []
        if layer.verdict == DENIED:
            reason = MTLS_STRICT_PLAINTEXT if layer.reason == "mtls-strict" else AUTHZ_DENIED
        elif decision and decision.conditional and evidence.forbidden:
            # some HTTP requests are refused: were the 403s those?
            refused = None
            for sample in reversed(evidence.forbidden):
                found = self._decide(src, dst, key.port.number, principal, True, _request_of(sample.url, sample.method))
                if not found.allowed:
                    refused = found
                    break
            if refused is None:
                return None
            reason, decision = AUTHZ_DENIED, refused
            requests = tuple(dict.fromkeys(f"{s.method} {urlsplit(s.url).path or '/'}" for s in evidence.forbidden))
        elif (sides.http or "").startswith(_SNIFFED) and evidence.quick_closes and not group.http_seen:
            as_tcp = self._decide(src, dst, key.port.number, principal, False)
            if as_tcp.allowed:
                return None
            reason, decision = AUTHZ_DENIED, as_tcp
            notes.append(f"{sides.http}; as HTTP the source is admitted, as TCP refused, and the connections "
                         "closed right after setup with no HTTP seen: taken as TCP")
        else:
            return None
        return self._refusal(key, src, dst, layer, reason, decision, evidence, requests, notes)

    @staticmethod
    def _refusal(key: Conn, src: Subject, dst: Subject, layer: LayerResult, reason: str,
                 decision: istio.IstioDecision | None,
                 evidence: Evidence, requests: tuple[str, ...], notes: list[str]) -> MeshRefusal:
        sides = layer.mesh
        seen = evidence.refusal_seen
        where = f"{key.dst}:{key.port.text}"
        if reason == MTLS_STRICT_PLAINTEXT:
            decision = None
            summary = (f"plaintext to a STRICT mTLS workload: {key.src} has no sidecar "
                       f"({sides.source_in_mesh}) and {where} accepts only mTLS: {sides.mtls.reason if sides.mtls else None}")
        else:
            summary = f"refused by Istio at {where}: {(decision.reason if decision else '') or layer.explanation}"
            if requests:
                summary += f" (refused requests: {', '.join(requests)})"
        if not seen:
            summary = "policy would refuse (no refusal seen in the packets yet): " + summary
            if evidence.carried_on and not evidence.quick_closes:
                notes.append(f"{evidence.carried_on} connection(s) carried on past the handshake: the cluster state "
                             "may not match the cluster that was recorded")
        notes += [f"{s.id}: {n}" for s in (src, dst) for n in s.notes]
        return MeshRefusal(key, reason,
                           REFUSED if seen else POLICY_WOULD_REFUSE, "high" if seen else "low", summary, evidence,
                           layer, decision, sides.mtls, sides.source_principal, requests,
                           tuple(dict.fromkeys(notes)), src, dst)
