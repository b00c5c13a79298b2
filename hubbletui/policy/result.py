"""What a trace answers: a verdict per layer (egress at the source, ingress at the destination, Istio), with
the policies that isolate each side, the rule that allowed, or the nearest rules and what each lacks.

`TraceResult.to_dict()` is the stable JSON form (`hubbletui trace -o json`); `hubbletui.render.trace_lines` words it for people.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hubbletui.policy.istio import IstioDecision
from hubbletui.policy.records import Condition, Hit, MeshSides, NearRule
from hubbletui.policy.subjects import Subject

ALLOWED, DENIED = "allowed", "denied"
# the answer when the connection is allowed at L3/L4 but what happens then is decided by something the cluster
# state cannot show: an L7 proxy's per-request rules, DNS answers (toFQDNs), Istio's external authorizer (CUSTOM)
CONDITIONAL = "conditional"


@dataclass
class LayerResult:
    layer: str  # egress | ingress | istio
    endpoint: str  # where it is enforced: the source for egress, the destination otherwise
    verdict: str
    reason: str  # not-an-endpoint | not-isolated | allowed-by-rule | localhost | deny-rule | default-deny | ...
    explanation: str
    drop_reason: str = ""  # what Hubble would report: POLICY_DENIED (133) or POLICY_DENY (181)
    isolated_by: list[str] = field(default_factory=list)  # policy refs whose rules put this side in default deny
    selected_by: list[str] = field(default_factory=list)  # every policy with a rule for this side and direction
    allowed_by: list[Hit] = field(default_factory=list)
    denied_by: list[Hit] = field(default_factory=list)
    nearest: list[NearRule] = field(default_factory=list)
    l7: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    mesh: MeshSides | None = None  # the istio layer: both sides' mesh membership, mTLS mode, principal
    conditions: list[Condition] = field(default_factory=list)
    decision: IstioDecision | None = None  # the istio layer's AuthorizationPolicy verdict

    def to_dict(self) -> dict:
        out = {"layer": self.layer, "endpoint": self.endpoint, "verdict": self.verdict, "reason": self.reason,
               "explanation": self.explanation, "drop_reason": self.drop_reason or None,
               "isolated_by": self.isolated_by, "selected_by": self.selected_by,
               "allowed_by": [h.to_dict() for h in self.allowed_by], "denied_by": [h.to_dict() for h in self.denied_by],
               "nearest": [n.to_dict() for n in self.nearest], "l7": self.l7, "notes": self.notes,
               "conditions": [c.to_dict() for c in self.conditions]}
        if self.mesh is not None:  # JSON keeps its one "detail" object for the layer's extras
            out["detail"] = self.mesh.to_dict() | ({"decision": self.decision.to_dict()} if self.decision else {})
        return out


@dataclass
class TraceResult:
    src: Subject
    dst: Subject
    port: int
    protocol: str
    layers: list[LayerResult]
    notes: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)  # cluster state the answer depends on and lacks

    @property
    def verdict(self) -> str:
        return ALLOWED if all(layer.verdict == ALLOWED for layer in self.layers) else DENIED

    @property
    def allowed(self) -> bool:
        return self.verdict == ALLOWED

    @property
    def conditions(self) -> list[Condition]:
        """What an allowed connection still depends on (empty when denied: the denial is unconditional)."""
        if self.verdict != ALLOWED:
            return []
        return [Condition(c.kind, c.text, layer.layer) for layer in self.layers for c in layer.conditions]

    @property
    def answer(self) -> str:
        """The verdict people and programs see: allowed, denied, or conditional (allowed at L3/L4, with the
        conditions that then decide). `verdict` stays allowed/denied for the engine's own reasoning."""
        return CONDITIONAL if self.conditions else self.verdict

    @property
    def deciding_layer(self) -> LayerResult | None:
        """The first layer that denied (the one Hubble's traffic_direction names), None when allowed."""
        return next((layer for layer in self.layers if layer.verdict != ALLOWED), None)

    def layer(self, name: str) -> LayerResult | None:
        return next((layer for layer in self.layers if layer.layer == name), None)

    @property
    def l7(self) -> list[str]:
        return [text for layer in self.layers for text in layer.l7]

    @property
    def port_label(self) -> str:
        return f"{self.protocol} type {self.port}" if self.protocol.startswith("ICMP") else \
            f"{self.port}/{self.protocol}"

    def explanation(self) -> str:
        deciding = self.deciding_layer
        head = f"{self.src.id} -> {self.dst.id} {self.port_label}"
        if deciding is None:
            if self.conditions:
                return f"{head} is allowed only on conditions: " + "; ".join(c.text for c in self.conditions)
            return f"{head} is allowed"
        return f"{head} is denied at {deciding.layer} of {deciding.endpoint}: {deciding.explanation}"

    def to_dict(self) -> dict:
        deciding = self.deciding_layer
        return {"verdict": self.answer, "conditions": [c.to_dict() for c in self.conditions], "src": self.src.summary(),
                "dst": self.dst.summary(),
                "dport": self.port, "protocol": self.protocol,
                "decided_by": deciding.layer if deciding else None,
                "drop_reason": deciding.drop_reason or None if deciding else None,
                "l7": self.l7, "explanation": self.explanation(),
                "layers": [layer.to_dict() for layer in self.layers], "notes": self.notes,
                "incomplete": self.incomplete}


def summary_dict(result: TraceResult) -> dict:
    """The short form of a batch answer: the verdict, who decided, and per layer the rules that did."""
    deciding = result.deciding_layer
    return {"verdict": result.answer, "conditions": [c.to_dict() for c in result.conditions],
            "incomplete": result.incomplete,
            "decided_by": deciding.layer if deciding else None,
            "drop_reason": (deciding.drop_reason or None) if deciding else None, "l7": result.l7,
            "explanation": result.explanation(),
            "layers": [{"layer": layer.layer, "endpoint": layer.endpoint, "verdict": layer.verdict,
                        "reason": layer.reason, "isolated_by": layer.isolated_by,
                        "allowed_by": [h.where for h in layer.allowed_by],
                        "denied_by": [h.where for h in layer.denied_by]}
                       for layer in result.layers]}
