"""Endpoint selectors as policies write them: a Kubernetes LabelSelector read into the label engine of
`hubbletui.flows.labels`, and the words for what a label set misses ("the nearest rule lacks the label app=web").
"""

from __future__ import annotations

from collections.abc import Mapping

from hubbletui.flows.labels import NAMESPACE_LABEL, OPS, Requirement, Selector, split_source
from hubbletui.policy.labels import CLUSTER_LABEL, NAMESPACE_LABELS_PREFIX, SERVICE_ACCOUNT_LABEL
from hubbletui.policy.records import Lack


class SelectorError(ValueError):
    pass


def requirement_lack(req: Requirement, side: str) -> Lack:
    """What ``side`` (the subject or the peer) must carry to satisfy this requirement, in words and as data."""
    key, values = req.key, list(req.values)
    if key == NAMESPACE_LABEL and req.source in ("k8s", "any"):
        what, shown = "namespace", None
    elif key.startswith(NAMESPACE_LABELS_PREFIX):
        what, shown = "namespace-label", key[len(NAMESPACE_LABELS_PREFIX):]
    elif key == SERVICE_ACCOUNT_LABEL:
        what, shown = "service-account", None
    elif key == CLUSTER_LABEL:
        what, shown = "cluster", None
    elif req.source == "reserved":
        what, shown = "entity", key
    else:
        what, shown = "label", key
    text = _describe_text(what, shown, req.op, values)
    return Lack(side, what, text, key=shown if shown is not None else key, op=req.op, values=req.values,
                selector_key=req.label_key)


def selector_text(selector: Selector) -> str:
    """For people: "label app=web, namespace prod"; the local-cluster requirement goes unsaid."""
    parts = [requirement_lack(req, "peer").text for req in selector.requirements
             if not (req.key == CLUSTER_LABEL and req.op == "Exists")]
    return ", ".join(parts) if parts else "every endpoint"


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


