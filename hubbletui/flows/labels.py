"""Kubernetes label selectors over Hubble's source-prefixed labels ("k8s:app=x", "reserved:world").

Used by `--label`/`--from-label`/`--to-label` and the FlowFilter label fields. As in Hubble, a key without a
source prefix matches a label of any source; `k8s:app=x` matches only the k8s source.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_SET_OP = re.compile(r"^\s*(!?)\s*([^\s!=(),]+)\s*(?:(==|=|!=)\s*([^\s,()]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*$")


@dataclass(frozen=True)
class Requirement:
    source: str  # "" = any source
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: frozenset[str]

    def matches(self, labels: dict[tuple[str, str], str]) -> bool:
        found = [v for (src, k), v in labels.items() if k == self.key and (not self.source or src == self.source)]
        if self.op == "exists":
            return bool(found)
        if self.op == "!exists":
            return not found
        if self.op in ("=", "in"):
            return any(v in self.values for v in found)
        # != and notin match when the key is absent too (Kubernetes semantics)
        return all(v not in self.values for v in found)


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Iterable[str]) -> bool:
        table = split_labels(labels)
        return all(req.matches(table) for req in self.requirements)


def split_labels(labels: Iterable[str]) -> dict[tuple[str, str], str]:
    """("k8s:app=x", "reserved:world") -> {("k8s","app"): "x", ("reserved","world"): ""}."""
    out = {}
    for label in labels:
        source, sep, rest = label.partition(":")
        if not sep:
            source, rest = "", label
        key, _, value = rest.partition("=")
        out[(source, key)] = value
    return out


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


def _source_key(token: str) -> tuple[str, str]:
    # "k8s:app" -> ("k8s", "app"); keys such as "app.kubernetes.io/name" contain no colon
    source, sep, key = token.partition(":")
    return (source, key) if sep else ("", token)


def parse_selector(text: str) -> Selector:
    """Parse 'app=x,tier!=web,env in (a,b),!legacy,k8s:team' into a Selector; ValueError when malformed."""
    requirements = []
    for part in _split_top_level(text):
        m = _SET_OP.match(part)
        if not m:
            raise ValueError(f"not a label selector: {part!r}")
        negate, key_token, eq_op, eq_value, set_op, set_values = m.groups()
        source, key = _source_key(key_token)
        if eq_op:
            if negate:
                raise ValueError(f"not a label selector: {part!r}")
            op = "!=" if eq_op == "!=" else "="
            requirements.append(Requirement(source, key, op, frozenset([eq_value])))
        elif set_op:
            values = frozenset(v.strip() for v in set_values.split(",") if v.strip())
            requirements.append(Requirement(source, key, set_op, values))
        else:
            requirements.append(Requirement(source, key, "!exists" if negate else "exists", frozenset()))
    if not requirements:
        raise ValueError(f"empty label selector: {text!r}")
    return Selector(tuple(requirements))
