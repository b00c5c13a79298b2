"""What a suggestion is: one or more changes (a new object, or a patch to an existing one), checked on a what-if
copy of the cluster, with the blast radius the check measured.

Everything here is plain data; the renderers (hubbletui/render/fixes_*.py) and the TUI only read it.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass, field

from hubbletui.cluster.model import KUBE_KINDS
from hubbletui.diagnose.groups import DropGroup
from hubbletui.policy.result import TraceResult

LABEL_CHANGE, RULE_PATCH, NEW_POLICY, ISTIO_AUTHZ = "label-change", "rule-patch", "new-policy", "istio-authz"
KINDS = (LABEL_CHANGE, RULE_PATCH, NEW_POLICY, ISTIO_AUTHZ)
# "label changes before new policies when equal": the order ties are broken in
KIND_ORDER = {LABEL_CHANGE: 0, RULE_PATCH: 1, ISTIO_AUTHZ: 2, NEW_POLICY: 3}

@dataclass(frozen=True)
class ObjectRef:
    kind: str
    namespace: str  # "" when cluster-scoped
    name: str

    @property
    def text(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name}


@dataclass(frozen=True)
class Patch:
    """A patch to an existing object: strategic merge for pod templates and namespaces (their labels are maps),
    JSON patch (RFC 6902 "add" operations) for policies, whose rules are lists a merge patch would replace."""

    target: ObjectRef
    type: str  # strategic | json
    body: dict | list

    def body_json(self) -> str:
        return json.dumps(self.body, separators=(",", ":"), sort_keys=True)

    def command(self) -> str:
        """The `kubectl patch` command, every part quoted for a POSIX shell."""
        kind = KUBE_KINDS[self.target.kind]
        parts = ["kubectl", "patch", kind.kubectl_resource, self.target.name]
        if kind.namespaced:
            parts += ["-n", self.target.namespace]
        parts += [f"--type={self.type}", "-p", self.body_json()]
        return " ".join(shlex.quote(p) for p in parts)

    def to_dict(self) -> dict:
        return {"target": self.target.to_dict(), "type": self.type, "body": self.body, "command": self.command()}


@dataclass(frozen=True)
class Change:
    """One piece of a fix. ``after`` holds the objects as they would be once it is applied (the what-if upserts:
    a patched workload comes with its pods relabelled, as a rollout would make them)."""

    kind: str  # one of KINDS
    target: ObjectRef
    summary: str  # one line for people
    after: tuple[dict, ...]
    size: int  # how many values it adds or changes: "the smallest change"
    new_object: dict | None = None  # set for a new policy
    patch: Patch | None = None  # set for a change to an existing object
    notes: tuple[str, ...] = ()
    widens: bool = False  # only adds peers or ports to an allow rule: it cannot deny what was allowed

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "target": self.target.to_dict(), "summary": self.summary, "size": self.size}
        if self.new_object is not None:
            out["object"] = self.new_object
        if self.patch is not None:
            out["patch"] = self.patch.to_dict()
        if self.notes:
            out["notes"] = list(self.notes)
        return out


@dataclass(frozen=True)
class NewPair:
    """A (source workload, destination workload, ports) the change allows that was denied before."""

    src: str
    dst: str
    ports: str  # "TCP 9161", "all connections"
    layer: str  # cilium | istio
    port_count: int = 1

    @property
    def text(self) -> str:
        return f"{self.src} -> {self.dst} {self.ports}" + (" (Istio)" if self.layer == "istio" else "")

    def to_dict(self) -> dict:
        return {"src": self.src, "dst": self.dst, "ports": self.ports, "layer": self.layer, "text": self.text}


@dataclass(frozen=True)
class BlastRadius:
    pairs: tuple[NewPair, ...] = ()
    truncated: bool = False  # counting stopped at len(pairs): "at least" that many

    @property
    def count(self) -> int:
        return len(self.pairs)

    @property
    def port_count(self) -> int:
        return sum(p.port_count for p in self.pairs)

    def text(self, limit: int = 5) -> str:
        if not self.pairs:
            return "newly allows nothing else"
        shown = "; ".join(p.text for p in self.pairs[:limit])
        more = f"; and {self.count - limit} more" if self.count > limit else ""
        noun = "pair" if self.count == 1 else "pairs"
        least = "at least " if self.truncated else ""
        return f"newly allows {least}{self.count} other {noun}: {shown}{more}"

    def to_dict(self) -> dict:
        return {"count": self.count, "at_least": self.truncated, "pairs": [p.to_dict() for p in self.pairs]}


@dataclass(frozen=True)
class Suggestion:
    """A checked fix: applied to a what-if copy, the group's drops were allowed and no forwarded flow broke."""

    changes: tuple[Change, ...]
    fixes: str  # the drops it fixes, for the comment heading its document
    blast: BlastRadius
    notes: tuple[str, ...] = ()
    checked: bool = True
    rank: int = 0  # 1-based within its group once ranked

    @property
    def kind(self) -> str:
        return self.changes[0].kind

    @property
    def target(self) -> ObjectRef:
        return self.changes[0].target

    @property
    def size(self) -> int:
        return sum(c.size for c in self.changes)

    @property
    def summary(self) -> str:
        return "; then ".join(c.summary for c in self.changes)

    @property
    def new_objects(self) -> list[dict]:
        return [c.new_object for c in self.changes if c.new_object is not None]

    @property
    def patches(self) -> list[Patch]:
        return [c.patch for c in self.changes if c.patch is not None]

    @property
    def id(self) -> str:
        """Stable across runs: a digest of what it changes."""
        digest = hashlib.sha256(json.dumps([c.to_dict() for c in self.changes], sort_keys=True).encode())
        return digest.hexdigest()[:12]

    def to_dict(self) -> dict:
        out = {"id": self.id, "rank": self.rank, "kind": self.kind, "target": self.target.to_dict(),
               "summary": self.summary, "fixes": self.fixes, "size": self.size,
               "blast_radius": self.blast.to_dict(), "checked": self.checked,
               "changes": [c.to_dict() for c in self.changes]}
        if self.notes:
            out["notes"] = list(self.notes)
        return out


@dataclass
class GroupFixes:
    """One group of dropped (or refused) flows: what explains it and the checked fixes, best first."""

    case: DropGroup
    explanation: str
    suggestions: list[Suggestion] = field(default_factory=list)
    not_offered: list[str] = field(default_factory=list)  # why some kind of fix is missing, plainly
    rejected: int = 0  # candidates that failed their check (never shown)
    trace: TraceResult | None = None  # when the engine could trace it

    def to_dict(self) -> dict:
        out = {**self.case.case_dict(), "explanation": self.explanation,
               "candidates": [s.to_dict() for s in self.suggestions], "not_offered": list(self.not_offered),
               "rejected_candidates": self.rejected}
        if self.trace is not None:
            out["trace"] = self.trace.to_dict()
        return out
