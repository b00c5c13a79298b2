"""Would Istio accept this AuthorizationPolicy? istiod's own checks, in words.

Follows `ValidateAuthorizationPolicy` in istio/istio `pkg/config/validation/validation.go` (and the helpers it
calls in `pkg/config/security`): the admission webhook refuses such an object, and when one is in the cluster
anyway (webhook off, a snapshot written by hand) istiod does not apply it. `validate_authorization_policy`
answers with the first problem, or None.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

_SOURCE_FIELDS = ("principals", "requestPrincipals", "namespaces", "ipBlocks", "remoteIpBlocks", "notPrincipals",
                  "notRequestPrincipals", "notNamespaces", "notIpBlocks", "notRemoteIpBlocks", "serviceAccounts",
                  "notServiceAccounts")
_OPERATION_FIELDS = ("ports", "methods", "paths", "hosts", "notPorts", "notMethods", "notPaths", "notHosts")
_CUSTOM_UNSUPPORTED_SOURCE = ("namespaces", "notNamespaces", "serviceAccounts", "notServiceAccounts", "principals",
                              "notPrincipals", "requestPrincipals", "notRequestPrincipals")
_CUSTOM_UNSUPPORTED_KEYS = ("source.namespace", "source.serviceAccount", "source.principal")
ACTIONS = ("ALLOW", "DENY", "AUDIT", "CUSTOM")


def validate_authorization_policy(obj: Mapping) -> str | None:
    spec = obj.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        return "spec must be an object"
    action = str(spec.get("action") or "ALLOW")
    if action not in ACTIONS:
        return f"unknown action {action!r}"
    chosen = [k for k in ("selector", "targetRef") if spec.get(k) is not None] + \
        (["targetRefs"] if spec.get("targetRefs") else [])
    if len(chosen) > 1:
        return "only one of targetRefs or workloadSelector can be set"
    for key, value in ((spec.get("selector") or {}).get("matchLabels") or {}).items():
        if not key:
            return "empty key in workload selector"
        if "*" in str(key) or "*" in str(value):
            return f"wildcard is not supported in selector: {key}={value}"
    rules = spec.get("rules")
    if rules is not None and not isinstance(rules, list):
        return "rules must be a list"
    provider = spec.get("provider")
    if action == "CUSTOM":
        if rules is None:
            return ("CUSTOM action without `rules` is meaningless as it will never be triggered, add an empty "
                    "rule `{}` if you want it be triggered for every request")
        if not provider or not (provider or {}).get("name"):
            return "`provider.name` must not be empty"
        for rule in rules:
            for entry in (rule or {}).get("from") or []:
                source = (entry or {}).get("source") or {}
                for field in _CUSTOM_UNSUPPORTED_SOURCE:
                    if source.get(field):
                        return f"From.{field[0].upper() + field[1:]} is currently not supported with CUSTOM action"
            for when in (rule or {}).get("when") or []:
                key = str((when or {}).get("key") or "")
                if key in _CUSTOM_UNSUPPORTED_KEYS or key.startswith("request.auth."):
                    return f"{key} is currently not supported with CUSTOM action"
    elif provider is not None:
        return f"`provider` must not be with non CUSTOM action, found {action}"
    if action == "DENY" and rules is None:
        return ("DENY action without `rules` is meaningless as it will never be triggered, add an empty rule "
                "`{}` if you want it be triggered for every request")
    for i, rule in enumerate(rules or []):
        problem = _rule(i, rule)
        if problem:
            return problem
    return None


def _rule(i: int, rule: object) -> str | None:
    if rule is None:
        return f"`rule` must not be nil, found at rule {i}"
    if not isinstance(rule, Mapping):
        return f"rule {i} must be an object"
    if rule.get("from") is not None and len(rule["from"]) == 0:
        return f"`from` must not be empty, found at rule {i}"
    for entry in rule.get("from") or []:
        source = (entry or {}).get("source") if isinstance(entry, Mapping) else None
        if source is None:
            return f"`from.source` must not be nil, found at rule {i}"
        if (any(source.get(f) for f in ("principals", "notPrincipals", "namespaces", "notNamespaces"))
                and any(source.get(f) for f in ("serviceAccounts", "notServiceAccounts"))):
            return f"cannot set serviceAccounts with namespaces or principals, found at rule {i}"
        if not any(source.get(f) for f in _SOURCE_FIELDS):
            return f"`from.source` must not be empty, found at rule {i}"
        for field in _SOURCE_FIELDS:
            values = source.get(field) or []
            if any(v == "" for v in values):
                return f"empty value is not allowed in {field}, found at rule {i}"
            if "IpBlocks" in field or field.endswith("ipBlocks"):
                for value in values:
                    if not _ip_or_cidr(str(value)):
                        return f"invalid IP address or CIDR {value!r} in {field}, found at rule {i}"
            if field in ("serviceAccounts", "notServiceAccounts"):
                for value in values:
                    if str(value).count("/") != 1 or not all(str(value).split("/")):
                        return f"{field} entry {value!r} must be in the form <namespace>/<name>, found at rule {i}"
    if rule.get("to") is not None and len(rule["to"]) == 0:
        return f"`to` must not be empty, found at rule {i}"
    for entry in rule.get("to") or []:
        op = (entry or {}).get("operation") if isinstance(entry, Mapping) else None
        if op is None:
            return f"`to.operation` must not be nil, found at rule {i}"
        if not any(op.get(f) for f in _OPERATION_FIELDS):
            return f"`to.operation` must not be empty, found at rule {i}"
        for field in _OPERATION_FIELDS:
            values = op.get(field) or []
            if any(v == "" for v in values):
                return f"empty value is not allowed in {field}, found at rule {i}"
        for field in ("ports", "notPorts"):
            for value in op.get(field) or []:
                text = str(value)
                if not text.isdigit() or not 0 <= int(text) <= 65535:
                    return f"invalid port {value!r} in {field}, found at rule {i}"
    for condition in rule.get("when") or []:
        key = str((condition or {}).get("key") or "")
        if not key:
            return "`key` must not be empty"
        if not (condition.get("values") or condition.get("notValues")):
            return f"at least one of `values` or `notValues` must be set for key {key}"
        if key in ("source.ip", "remote.ip", "destination.ip"):
            for value in list(condition.get("values") or []) + list(condition.get("notValues") or []):
                if not _ip_or_cidr(str(value)):
                    return f"invalid `value` for `key` {key}: {value!r} is not an IP or CIDR"
        if key == "destination.port":
            for value in list(condition.get("values") or []) + list(condition.get("notValues") or []):
                if not str(value).isdigit() or int(str(value)) > 65535:
                    return f"invalid `value` for `key` {key}: {value!r} is not a port"
    return None


def _ip_or_cidr(text: str) -> bool:
    try:
        if "/" in text:
            ipaddress.ip_network(text, strict=False)
        else:
            ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
