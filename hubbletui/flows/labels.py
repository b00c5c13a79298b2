"""Label selectors over source-prefixed identity labels ("k8s:app=x", "reserved:world"): one engine for the
flow filters (`--label`, `--from-label`, `--to-label`, the FlowFilter label fields) and the policy engine.

A label is kept as the string key ``source:key`` mapped to its value. A selector key with the ``any`` source
(written without a source: ``app``) matches a label of every source; ``k8s:app`` only the k8s source; ``$host``
is short for ``reserved:host``. Selectors come from a Kubernetes LabelSelector (policy/selectors.py) or from
Hubble's text form (`parse_selector`); a selector can say which requirements a label set misses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
OPS = ("In", "NotIn", "Exists", "DoesNotExist")
# matched against a stripped part (_split_top_level strips): no two neighbouring \s runs can trade characters,
# so a part any client sends (`hubbletui serve` compiles every label filter) fails in linear time, not in
# quadratic ("a" + 10^5 spaces + "in" took minutes)
_SET_OP = re.compile(r"^(!?)\s*([^\s!=(),]+)(?:\s*(==|=|!=)\s*([^\s,()]*)|\s+(in|notin)\s*\(([^)]*)\))?$")


class LabelSet:
    """An immutable set of identity labels: ``{"k8s:app": "web", "reserved:world": ""}``."""

    __slots__ = ("full", "_by_key", "key")

    def __init__(self, full: Mapping[str, str]):
        self.full: dict[str, str] = dict(full)
        by_key: dict[str, list[str]] = {}
        for source_key, value in self.full.items():
            by_key.setdefault(source_key.partition(":")[2], []).append(value)
        self._by_key = by_key
        self.key = frozenset(self.full.items())  # the identity: equal label sets share every cached answer

    def values(self, source: str, key: str) -> list[str]:
        """Values of ``key`` from ``source``; source ``any`` looks at every source."""
        if source == "any":
            return self._by_key.get(key, [])
        value = self.full.get(f"{source}:{key}")
        return [] if value is None else [value]

    def get(self, source: str, key: str) -> str | None:
        found = self.values(source, key)
        return found[0] if found else None

    def reserved(self) -> list[str]:
        return sorted(k[9:] for k in self.full if k.startswith("reserved:"))

    def hubble_form(self) -> list[str]:
        """As Hubble prints them: ``k8s:app=web``, ``reserved:world``."""
        return sorted(k if v == "" and k.startswith("reserved:") else f"{k}={v}" for k, v in self.full.items())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelSet) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"LabelSet({self.hubble_form()})"


def parse_hubble_labels(labels: Iterable[str], bare_source: str = "k8s") -> LabelSet:
    """["k8s:app=x", "reserved:world"] -> LabelSet; a label without a source is taken as ``bare_source`` (flow
    filters give it none, so that only a selector key without a source matches it, as in Hubble)."""
    full = {}
    for label in labels:
        source, sep, rest = label.partition(":")
        if not sep:
            source, rest = bare_source, label
        key, _, value = rest.partition("=")
        full[f"{source}:{key}"] = value
    return LabelSet(full)


def split_source(key: str, default_source: str = "any") -> tuple[str, str]:
    """'k8s:app' -> ('k8s', 'app'); 'app' -> (default_source, 'app'); '$host' -> ('reserved', 'host')."""
    if key.startswith("$"):
        return "reserved", key[1:]
    source, sep, rest = key.partition(":")
    if not sep:
        return default_source, key
    return source or default_source, rest


@dataclass(frozen=True)
class Requirement:
    source: str  # "any" matches every source
    key: str
    op: str  # In | NotIn | Exists | DoesNotExist
    values: tuple[str, ...] = ()

    def matches(self, labels: LabelSet) -> bool:
        found = labels.values(self.source, self.key)
        if self.op == "In":
            return any(v in self.values for v in found)
        if self.op == "Exists":
            return bool(found)
        if self.op == "DoesNotExist":
            return not found
        return all(v not in self.values for v in found)  # NotIn: an absent key matches (Kubernetes semantics)

    @property
    def label_key(self) -> str:
        return f"{self.source}:{self.key}"


@dataclass(frozen=True)
class Selector:
    """All requirements must hold; no requirement selects everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: LabelSet) -> bool:
        for req in self.requirements:
            if not req.matches(labels):
                return False
        return True

    def missing(self, labels: LabelSet) -> list[Requirement]:
        return [req for req in self.requirements if not req.matches(labels)]

    @property
    def is_wildcard(self) -> bool:
        return not self.requirements

    def has_key(self, source_key: str) -> bool:
        return any(req.label_key == source_key for req in self.requirements)

    def has_key_prefix(self, prefix: str) -> bool:
        return any(req.label_key.startswith(prefix) for req in self.requirements)

    def has_source(self, source: str) -> bool:
        return any(req.source == source for req in self.requirements)

    def match_value(self, source_key: str) -> str | None:
        for req in self.requirements:
            if req.label_key == source_key and req.op == "In" and len(req.values) == 1:
                return req.values[0]
        return None

    def with_requirement(self, req: Requirement, replace_key: bool = False) -> Selector:
        kept = [r for r in self.requirements if not (replace_key and r.label_key == req.label_key)]
        return Selector(tuple(kept) + (req,))

    def pinned_namespace(self) -> str | None:
        """The one namespace this selector is limited to, if it names one."""
        try:
            return self.__dict__["_pinned"]
        except KeyError:
            pinned = self._find_pinned_namespace()
            object.__setattr__(self, "_pinned", pinned)  # a cache on a frozen dataclass: not part of equality
            return pinned

    def _find_pinned_namespace(self) -> str | None:
        for req in self.requirements:
            if req.key == NAMESPACE_LABEL and req.source in ("k8s", "any") and req.op == "In" \
                    and len(req.values) == 1:
                return req.values[0]
        return None

    def to_text(self) -> str:
        if not self.requirements:
            return "{} (everything)"
        parts = []
        for r in self.requirements:
            if r.op == "In" and len(r.values) == 1:
                parts.append(f"{r.label_key}={r.values[0]}")
            elif r.op in ("In", "NotIn"):
                parts.append(f"{r.label_key} {r.op.lower()} ({','.join(r.values)})")
            else:
                parts.append(r.label_key if r.op == "Exists" else f"!{r.label_key}")
        return ", ".join(parts)


class LabelIndex:
    """Which members carry which label, so that a selector is answered with set operations over all members
    at once instead of one label set at a time (the graph and the blast radius ask about every subject)."""

    def __init__(self, members: Iterable[tuple[object, LabelSet]]):
        self.all: set = set()
        self._by_key: dict[str, dict[str, set]] = {}  # "source:key" and "any:key" -> value -> members
        for member, labels in members:
            self.all.add(member)
            for source_key, value in labels.full.items():
                for key in (source_key, "any:" + source_key.partition(":")[2]):
                    self._by_key.setdefault(key, {}).setdefault(value, set()).add(member)

    def _having(self, req: Requirement, values: Iterable[str] | None) -> set:
        by_value = self._by_key.get(req.label_key, {})
        if values is None:
            return set().union(*by_value.values()) if by_value else set()
        return set().union(*(by_value.get(v, ()) for v in values))

    def select(self, selector: Selector) -> set:
        """The members ``selector`` matches."""
        found = set(self.all)
        for req in selector.requirements:
            if req.op == "In":
                found &= self._having(req, req.values)
            elif req.op == "Exists":
                found &= self._having(req, None)
            elif req.op == "NotIn":
                found -= self._having(req, req.values)
            else:
                found -= self._having(req, None)
            if not found:
                break
        return found


def match_labels_selector(labels: Mapping[str, str], source: str = "k8s") -> Selector:
    return Selector(tuple(Requirement(source, k, "In", (v,)) for k, v in labels.items()))


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in (p.strip() for p in parts) if p]


def parse_selector(text: str) -> Selector:
    """Parse 'app=x,tier!=web,env in (a,b),!legacy,k8s:team' into a Selector; ValueError when malformed."""
    requirements = []
    for part in _split_top_level(text):
        m = _SET_OP.match(part)
        if not m:
            raise ValueError(f"not a label selector: {part!r}")
        negate, key_token, eq_op, eq_value, set_op, set_values = m.groups()
        source, sep, key = key_token.partition(":")  # keys such as "app.kubernetes.io/name" contain no colon
        source, key = (source or "any", key) if sep else ("any", key_token)
        if eq_op:
            if negate:
                raise ValueError(f"not a label selector: {part!r}")
            requirements.append(Requirement(source, key, "NotIn" if eq_op == "!=" else "In", (eq_value,)))
        elif set_op:
            values = tuple(sorted({v.strip() for v in set_values.split(",") if v.strip()}))
            requirements.append(Requirement(source, key, "In" if set_op == "in" else "NotIn", values))
        else:
            requirements.append(Requirement(source, key, "DoesNotExist" if negate else "Exists"))
    if not requirements:
        raise ValueError(f"empty label selector: {text!r}")
    return Selector(tuple(requirements))
