"""Endpoint selectors: Kubernetes label selectors over source-prefixed identity labels, as Cilium reads them.

A key ``k8s:app`` matches only labels of the k8s source, ``app`` (= ``any:app``) labels of every source,
``$host`` is short for ``reserved:host``. A selector can say which of its requirements a label set misses:
that is what "the nearest rule lacks the label app=web" is made of.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hubbletui.policy.records import Lack
from hubbletui.policy.labels import (
    CLUSTER_LABEL,
    NAMESPACE_LABEL,
    NAMESPACE_LABELS_PREFIX,
    SERVICE_ACCOUNT_LABEL,
    LabelSet,
)

OPS = ("In", "NotIn", "Exists", "DoesNotExist")


class SelectorError(ValueError):
    pass


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

    def lack(self, side: str) -> Lack:
        """What ``side`` (the subject or the peer) must carry to satisfy this requirement, in words and as data."""
        key, values = self.key, list(self.values)
        if key == NAMESPACE_LABEL and self.source in ("k8s", "any"):
            what, shown = "namespace", None
        elif key.startswith(NAMESPACE_LABELS_PREFIX):
            what, shown = "namespace-label", key[len(NAMESPACE_LABELS_PREFIX):]
        elif key == SERVICE_ACCOUNT_LABEL:
            what, shown = "service-account", None
        elif key == CLUSTER_LABEL:
            what, shown = "cluster", None
        elif self.source == "reserved":
            what, shown = "entity", key
        else:
            what, shown = "label", key
        text = _describe_text(what, shown, self.op, values)
        return Lack(side, what, text, key=shown if shown is not None else key, op=self.op, values=self.values,
                    selector_key=self.label_key)


def _describe_text(what: str, key: str | None, op: str, values: list[str]) -> str:
    noun = {"namespace": "namespace", "service-account": "service account", "cluster": "cluster"}.get(what)
    if what == "entity":
        return f"be the {key} entity" if op in ("Exists", "In") else f"not be the {key} entity"
    subject = noun if noun else ("namespace label " if what == "namespace-label" else "label ") + str(key)
    if op == "In" and len(values) == 1:
        return f"{subject} {values[0]}" if noun else f"{subject}={values[0]}"
    if op == "In":
        return f"{subject} in ({', '.join(values)})"
    if op == "NotIn":
        return f"{subject} not in ({', '.join(values)})"
    if op == "Exists":
        return f"{subject} present" if not noun else f"any {subject}"
    return f"no {subject}"


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

    def describe_text(self) -> str:
        """For people: "label app=web, namespace prod"; the local-cluster requirement goes unsaid."""
        parts = [req.lack("peer").text for req in self.requirements
                 if not (req.key == CLUSTER_LABEL and req.op == "Exists")]
        return ", ".join(parts) if parts else "every endpoint"

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


def parse_label_selector(spec: object, default_source: str = "any", key_prefix: str = "") -> Selector:
    """A Kubernetes LabelSelector dict -> Selector. ``key_prefix`` is prepended to every key (NetworkPolicy's
    namespaceSelector keys become ``io.cilium.k8s.namespace.labels.<key>``)."""
    if spec is None:
        return Selector()
    if not isinstance(spec, Mapping):
        raise SelectorError(f"a label selector must be an object, not {type(spec).__name__}")
    reqs: list[Requirement] = []
    match_labels = spec.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        raise SelectorError("matchLabels must be an object")
    for raw_key, value in match_labels.items():
        source, key = split_source(str(raw_key), default_source)
        reqs.append(Requirement(source, key_prefix + key, "In", (_str(value),)))
    expressions = spec.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise SelectorError("matchExpressions must be a list")
    for expr in expressions:
        if not isinstance(expr, Mapping):
            raise SelectorError("a matchExpressions entry must be an object")
        op = expr.get("operator")
        if op not in OPS:
            raise SelectorError(f"unknown selector operator {op!r}")
        values = tuple(_str(v) for v in expr.get("values") or [])
        if op in ("In", "NotIn") and not values:
            raise SelectorError(f"operator {op} needs values")
        source, key = split_source(str(expr.get("key", "")), default_source)
        reqs.append(Requirement(source, key_prefix + key, op, values))
    return Selector(tuple(reqs))


def _str(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def match_labels_selector(labels: Mapping[str, str], source: str = "k8s") -> Selector:
    return Selector(tuple(Requirement(source, k, "In", (v,)) for k, v in labels.items()))
