"""The records a trace answer is made of, passed from the engine to diagnose, suggest and render: a rule that
decided (`Hit`), an allow rule that came near (`NearRule`), one thing that rule lacks (`Lack`), and what an
allowed connection still depends on (`Condition`), and what the Istio layer saw of both sides (`MeshSides`).

They are typed so that readers name fields instead of string keys; `to_dict` is their stable JSON form (the
key order and the keys a kind of record leaves out are part of it: `trace -o json` is read by programs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rules.py and istio.py build these records: a runtime import would go round in a circle
    from hubbletui.policy.istio import MtlsDecision
    from hubbletui.policy.rules import PolicyKey


@dataclass(frozen=True)
class Lack:
    """What the subject, the peer or the port misses for a rule to admit the connection.

    side: subject | peer | port. what: label | namespace | namespace-label | service-account | cluster | entity |
    cidr | fqdn | port | nothing | unsupported, or an Istio spec field. A label requirement also carries its key,
    operator, values and `selector_key` (source:key); a port lack the port, protocol and what the rule allows.
    """

    side: str
    what: str
    text: str
    key: str | None = None
    op: str | None = None
    values: tuple[str, ...] = ()
    selector_key: str | None = None  # set only for a label requirement of a selector
    port: int | None = None
    protocol: str | None = None
    allowed: str | None = None

    def to_dict(self) -> dict:
        if self.selector_key is not None:
            return {"side": self.side, "what": self.what, "key": self.key, "op": self.op,
                    "values": list(self.values), "selector_key": self.selector_key, "text": self.text}
        out: dict = {"side": self.side, "what": self.what, "text": self.text}
        if self.key is not None:
            out["key"] = self.key
        if self.port is not None:
            out.update(port=self.port, protocol=self.protocol, allowed=self.allowed)
        return out


@dataclass(frozen=True)
class Hit:
    """A rule that allowed or denied (or came near): its policy's ref and the rule's path in the spec.

    Cilium and Kubernetes rules carry their policy, direction and action (and the L7 rules an allow depends on);
    Istio's carry the action only, and a near Istio rule neither.
    """

    ref: str
    path: str
    action: str | None = None
    policy: PolicyKey | None = None
    direction: str | None = None
    l7: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.ref} {self.path}"

    def to_dict(self) -> dict:
        out: dict = {"ref": self.ref}
        if self.policy is not None:
            out["policy"] = self.policy.to_dict()
        out["path"] = self.path
        if self.direction is not None:
            out["direction"] = self.direction
        if self.action is not None:
            out["action"] = self.action
        if self.l7:
            out["l7"] = list(self.l7)
        return out


@dataclass(frozen=True)
class NearRule:
    """An allow rule that came nearest to admitting a denied connection, with what it lacks.

    `selects_endpoint` and `distance` are the engine's ranking (None for Istio rules, ranked by their own count);
    `peers` and `ports` say what the rule allows, in words.
    """

    hit: Hit
    lacks: tuple[Lack, ...]
    peers: str = ""
    ports: str = ""
    selects_endpoint: bool | None = None
    distance: int | None = None

    @property
    def ref(self) -> str:
        return self.hit.ref

    @property
    def path(self) -> str:
        return self.hit.path

    def to_dict(self) -> dict:
        out = self.hit.to_dict()
        if self.selects_endpoint is not None:
            out["selects_endpoint"] = self.selects_endpoint
        if self.distance is not None:
            out["distance"] = self.distance
        out.update(lacks=[lack.to_dict() for lack in self.lacks], peers=self.peers, ports=self.ports)
        return out


@dataclass(frozen=True)
class Condition:
    """What an allowed connection still depends on: kind is l7 | fqdn | istio-http | istio-custom. A trace's
    list names the layer each came from; a layer's own list leaves it out."""

    kind: str
    text: str
    layer: str | None = None

    def to_dict(self) -> dict:
        out = {} if self.layer is None else {"layer": self.layer}
        out.update(kind=self.kind, text=self.text)
        return out


@dataclass(frozen=True)
class MeshSides:
    """What the Istio layer saw of a connection: why each side is (not) in the mesh, the mTLS mode on the port,
    the source's principal (None: plaintext) and how Istio speaks the port. A connection the sidecar does not
    capture has only its destination's membership."""

    destination_in_mesh: str
    source_in_mesh: str | None = None
    mtls: MtlsDecision | None = None
    source_principal: str | None = None
    http: str | None = None  # how the port's protocol was decided (a Service port name, or sniffed)

    @property
    def captured(self) -> bool:
        return self.source_in_mesh is not None

    def to_dict(self) -> dict:
        out: dict = {"destination_in_mesh": self.destination_in_mesh}
        if self.captured:
            out.update(source_in_mesh=self.source_in_mesh, mtls=self.mtls.to_dict() if self.mtls else None,
                       source_principal=self.source_principal)
            if self.http is not None:
                out["http"] = self.http
        return out
