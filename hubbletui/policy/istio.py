"""Istio as one workload's sidecar sees it: AuthorizationPolicy verdicts, PeerAuthentication mTLS mode,
and whether a pod carries a sidecar at all.

Pure functions over the raw dicts `kubectl get -o json` prints (security.istio.io v1 and v1beta1 share one
shape). Semantics follow istio/api's authorization_policy.proto and Istio's RBAC filter generation:
CUSTOM, then DENY, then ALLOW; HTTP-only attributes on a TCP port widen a DENY rule and disable an ALLOW
rule; identity attributes need mTLS.

Three outcomes per condition: it matches, it misses (and we can say what the source lacks), or it depends on
the HTTP request we were not shown (an HTTP port with no request details). The third makes a verdict
*conditional*: an ALLOW rule with `methods: [GET]` admits the principal's GET requests, so the connection is
allowed, and a DENY rule with `paths: [/admin*]` refuses some requests, not the connection.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

DEFAULT_TRUST_DOMAIN = "cluster.local"
SIDECAR_CONTAINER = "istio-proxy"

_ACTIONS = ("ALLOW", "DENY", "AUDIT", "CUSTOM")  # AUDIT is collected and never consulted: it decides nothing
_HTTP_SOURCE_FIELDS = frozenset({"requestPrincipals", "notRequestPrincipals"})
_HTTP_OPERATION_FIELDS = frozenset({"hosts", "notHosts", "methods", "notMethods", "paths", "notPaths"})
# `when` keys read from the source address (every `request.*` key is HTTP-only)
_IP_KEYS = frozenset({"source.ip", "remote.ip"})
_FRIENDLY = {
    "principals": "principal", "notPrincipals": "principal excluded", "namespaces": "namespace",
    "notNamespaces": "namespace excluded", "serviceAccounts": "service account",
    "notServiceAccounts": "service account excluded", "trustDomains": "trust domain",
    "notTrustDomains": "trust domain excluded", "ports": "port", "notPorts": "port excluded",
    "ipBlocks": "source IP", "notIpBlocks": "source IP excluded", "remoteIpBlocks": "remote IP",
    "notRemoteIpBlocks": "remote IP excluded", "mtls": "mTLS", "http": "HTTP",
}


# ---------------------------------------------------------------------------------------------- identities

def principal_of(namespace: str, service_account: str | None = "default",
                 trust_domain: str = DEFAULT_TRUST_DOMAIN) -> str:
    """The mTLS principal Istio gives a workload: `<trust domain>/ns/<namespace>/sa/<service account>`."""
    return f"{trust_domain}/ns/{namespace}/sa/{service_account or 'default'}"


def parse_principal(principal: str) -> tuple[str, str, str] | None:
    """(trust domain, namespace, service account) of a principal, `spiffe://` prefix or not; None if not one."""
    parts = principal.removeprefix("spiffe://").split("/")
    if len(parts) == 5 and parts[1] == "ns" and parts[3] == "sa" and all(parts[i] for i in (0, 2, 4)):
        return parts[0], parts[2], parts[4]
    return None


# ---------------------------------------------------------------------------------------------- results

@dataclass(frozen=True)
class NearMiss:
    """An ALLOW rule that did not admit the source, and what it lacks (one short phrase per condition).

    `fields` names the same conditions by their spec field (`principals`, `ports`, `when:destination.port`,
    `mtls`, `http`), in the order of `lacks`, for code that proposes the fix.
    """

    policy: str
    rule_index: int
    lacks: tuple[str, ...]
    fields: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"policy": self.policy, "rule_index": self.rule_index, "lacks": list(self.lacks),
                "fields": list(self.fields)}


@dataclass(frozen=True)
class IstioDecision:
    """Istio's verdict for one source on one port of one workload.

    action: which kind of policy decided: "DENY" (a DENY rule matched), "ALLOW" (ALLOW policies apply; one
    matched or none did), "CUSTOM" (an external authorizer has the last word; Istio's own policies allow),
    "NONE" (no ALLOW policy applies and no DENY matched: Istio's default allow).
    conditional: the verdict holds only for some HTTP requests (see notes).
    """

    allowed: bool
    action: str
    reason: str
    matched: tuple[str, int] | None = None
    applicable_allow: tuple[str, ...] = ()
    nearest: tuple[NearMiss, ...] = ()
    notes: tuple[str, ...] = ()
    conditional: bool = False

    def to_dict(self) -> dict:
        return {
            "allowed": self.allowed,
            "action": self.action,
            "reason": self.reason,
            "matched": {"policy": self.matched[0], "rule_index": self.matched[1]} if self.matched else None,
            "applicable_allow": list(self.applicable_allow),
            "nearest": [n.to_dict() for n in self.nearest],
            "notes": list(self.notes),
            "conditional": self.conditional,
        }


# ---------------------------------------------------------------------------------------------- small helpers

def policy_ref(obj: Mapping) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name') or ''}"


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _strings(value) -> list[str]:
    # YAML turns `ports: [8080]` into ints; Istio compares strings.
    return [str(v) for v in _list(value) if v is not None]


def _labels_match(match_labels: Mapping, labels: Mapping) -> bool:
    return all(labels.get(k) == str(v) for k, v in match_labels.items())


def string_match(pattern: str, value: str | None) -> bool:
    """Istio's string match: exact, `prefix*`, `*suffix`, or `*` (present and not empty)."""
    if value is None:
        return False
    if pattern == "*":
        return value != ""
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def _exact(pattern: str, value: str) -> bool:
    return pattern == value


def _path_match(pattern: str, path: str) -> bool:
    path = path.split("?", 1)[0].split("#", 1)[0]  # Istio matches the path without its query
    if "{*}" in pattern or "{**}" in pattern:
        # path templates: {*} is one segment, {**} any number of segments (it must come last)
        regex = "".join("[^/]+" if part == "{*}" else ".*" if part == "{**}" else re.escape(part)
                        for part in re.split(r"(\{\*\*?\})", pattern))
        return re.fullmatch(regex, path) is not None
    return string_match(pattern, path)


def _host_match(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower(), host.lower()
    if string_match(pattern, host):
        return True
    # a policy host without a port matches the Host header whatever its port
    return ":" not in pattern and ":" in host and string_match(pattern, host.rsplit(":", 1)[0])


def _ip_in(block: str, ip) -> bool:
    try:
        return ip in ipaddress.ip_network(block, strict=False)
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------------- rule evaluation

_MATCH, _MISS, _UNKNOWN = "match", "miss", "unknown"


@dataclass
class _Outcome:
    status: str
    field: str = ""
    text: str = ""  # a miss: what the source lacks; unknown: the condition on the request


@dataclass
class _RuleResult:
    status: str
    lacks: list[_Outcome] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # kept only when the rule mattered to the verdict


@dataclass
class _Peer:
    """What we know of the connection and, for HTTP, of the request."""

    principal: str | None
    namespace: str | None
    service_account: str | None
    trust_domain: str | None
    port: int
    is_http: bool
    request: Mapping | None
    source_ip: object | None
    who: str

    @classmethod
    def build(cls, source_principal, source_namespace, port, is_http, request, source_ip) -> _Peer:
        principal = source_principal.removeprefix("spiffe://") if source_principal else None
        parsed = parse_principal(principal) if principal else None
        if principal and parsed is None:
            trust_domain, namespace, sa = None, source_namespace, None
        else:
            trust_domain, namespace, sa = parsed or (None, None, None)
        if principal:
            who = principal
        else:
            who = "plaintext traffic" + (f" from namespace {source_namespace}" if source_namespace else "")
        ip = None
        if source_ip:
            try:
                ip = ipaddress.ip_address(source_ip)
            except ValueError:
                ip = None
        return cls(principal, namespace, sa, trust_domain, port, is_http,
                   request if isinstance(request, Mapping) else None, ip, who)


class _RuleEvaluator:
    """Evaluates the rules of one policy for one peer, noting what it had to assume."""

    def __init__(self, peer: _Peer, action: str, ref: str, policy_namespace: str):
        self.peer, self.action, self.ref, self.policy_namespace = peer, action, ref, policy_namespace
        self.widening = action != "ALLOW"  # DENY/CUSTOM: what cannot be evaluated counts as a match
        self.notes: list[str] = []  # of the rule being evaluated

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # -- the outcome of something we cannot know from a connection (unknown `when` key, no source IP)
    def _unevaluable(self, field_name: str, what: str, index: int) -> _Outcome:
        if self.widening:
            self._note(f"{self.action} {self.ref} rule {index}: {what} cannot be evaluated here; treated as "
                       "matching")
            return _Outcome(_MATCH)
        self._note(f"ALLOW {self.ref} rule {index}: {what} cannot be evaluated here; treated as not matching")
        return _Outcome(_MISS, field_name, f"{what} (not evaluated)")

    def _set(self, field_name: str, values: list[str], actual: str | None, matcher, noun: str,
             shown: str | None = None) -> _Outcome:
        negative = field_name.startswith("not")
        hit = actual is not None and any(matcher(v, actual) for v in values)
        if hit != negative:
            return _Outcome(_MATCH)
        shown = shown if shown is not None else actual
        if negative:
            return _Outcome(_MISS, field_name, f"{noun} {shown} (excluded by {field_name})")
        return _Outcome(_MISS, field_name, f"{noun} {shown}")

    def _identity(self, field_name: str, values: list[str], actual: str | None, noun: str,
                  matcher=string_match) -> _Outcome:
        if self.peer.principal is None and not field_name.startswith("not"):
            return _Outcome(_MISS, "mtls", f"mTLS identity ({self.peer.who} carries no principal)")
        return self._set(field_name, values, actual, matcher, noun, actual or "(none in its principal)")

    # -- HTTP attributes
    def _http(self, field_name: str, values: list[str], actual: str | None, matcher, noun: str) -> _Outcome:
        if not self.peer.is_http:
            return _Outcome(_MATCH)  # DENY widening; an ALLOW rule with HTTP fields is refused before we get here
        if actual is None:
            negative = field_name.startswith("not")
            if values == ["*"] and field_name in ("paths", "methods", "notPaths", "notMethods"):
                # every HTTP request has a method and a path
                return _Outcome(_MISS if negative else _MATCH, field_name, f"{noun} (any)")
            return _Outcome(_UNKNOWN, field_name, f"{field_name} {', '.join(values)}")
        return self._set(field_name, values, actual, matcher, noun)

    def source(self, src: Mapping, index: int) -> list[_Outcome]:
        peer, out = self.peer, []
        request = peer.request or {}
        for key, raw in src.items():
            values = _strings(raw)
            if key in ("principals", "notPrincipals"):
                out.append(self._identity(key, values, peer.principal, "principal"))
            elif key in ("namespaces", "notNamespaces"):
                out.append(self._identity(key, values, peer.namespace, "namespace"))
            elif key in ("trustDomains", "notTrustDomains"):
                out.append(self._identity(key, values, peer.trust_domain, "trust domain"))
            elif key in ("serviceAccounts", "notServiceAccounts"):
                # `ns/sa`, exact, any trust domain; a bare `sa` is read in the policy's namespace
                wanted = [v if "/" in v else f"{self.policy_namespace}/{v}" for v in values]
                actual = f"{peer.namespace}/{peer.service_account}" if peer.service_account else None
                out.append(self._identity(key, wanted, actual, "service account", _exact))
            elif key in ("ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks"):
                out.append(self._ip(key, values, index))
            elif key in _HTTP_SOURCE_FIELDS:
                out.append(self._http(key, values, request.get("request_principal"), string_match,
                                      "request principal"))
            else:
                out.append(self._unevaluable(key, f"source field {key}", index))
        return out

    def _ip(self, key: str, values: list[str], index: int) -> _Outcome:
        if self.peer.source_ip is None:
            return self._unevaluable(key, f"{key} without the source IP", index)
        hit = any(_ip_in(v, self.peer.source_ip) for v in values)
        if hit != key.startswith("not"):
            return _Outcome(_MATCH)
        noun = "remote IP" if "Remote" in key or key.startswith("remote") else "source IP"
        return _Outcome(_MISS, key, f"{noun} {self.peer.source_ip}" + (
            f" (excluded by {key})" if key.startswith("not") else ""))

    def operation(self, op: Mapping, index: int) -> list[_Outcome]:
        peer, out = self.peer, []
        request = peer.request or {}
        for key, raw in op.items():
            values = _strings(raw)
            if key in ("ports", "notPorts"):
                out.append(self._set(key, values, str(peer.port), _exact, "port"))
            elif key in ("methods", "notMethods"):
                out.append(self._http(key, values, request.get("method"), _exact, "method"))
            elif key in ("paths", "notPaths"):
                out.append(self._http(key, values, request.get("path"), _path_match, "path"))
            elif key in ("hosts", "notHosts"):
                out.append(self._http(key, values, request.get("host"), _host_match, "host"))
            else:
                out.append(self._unevaluable(key, f"operation field {key}", index))
        return out

    def condition(self, cond: Mapping, index: int) -> list[_Outcome]:
        key = str(cond.get("key") or "")
        values, not_values = _strings(cond.get("values")), _strings(cond.get("notValues"))
        field_name = f"when:{key}"
        peer = self.peer

        def both(actual: str | None, matcher, noun: str, shown: str | None = None) -> list[_Outcome]:
            checks = []
            if values:
                checks.append(self._set(field_name, values, actual, matcher, noun, shown))
            if not_values:
                hit = actual is not None and any(matcher(v, actual) for v in not_values)
                checks.append(_Outcome(_MISS, field_name, f"{noun} {shown or actual} (excluded by notValues)")
                              if hit else _Outcome(_MATCH))
            return checks

        if key == "destination.port":
            return both(str(peer.port), _exact, "destination port")
        if key in ("source.principal", "source.namespace"):
            actual = peer.principal if key == "source.principal" else peer.namespace
            if peer.principal is None and values:
                return [_Outcome(_MISS, "mtls", f"mTLS identity ({peer.who} carries no principal)")]
            return both(actual, string_match, key)
        if key in _IP_KEYS:
            if peer.source_ip is None:
                return [self._unevaluable(field_name, f"when {key} without the source IP", index)]
            return both(str(peer.source_ip), lambda block, ip: _ip_in(block, ipaddress.ip_address(ip)), key)
        if key.startswith("request."):
            if not peer.is_http:
                return [_Outcome(_MATCH)]  # DENY widening, as for HTTP operation fields
            actual = _request_attribute(key, peer.request)
            if actual is None:
                cond_text = " ".join(filter(None, [key, ("in " + ", ".join(values)) if values else "",
                                                   ("not in " + ", ".join(not_values)) if not_values else ""]))
                return [_Outcome(_UNKNOWN, field_name, cond_text)]
            return both(actual, string_match, key)
        return [self._unevaluable(field_name, f"when {key or '(no key)'}", index)]

    def rule(self, rule: Mapping, index: int) -> _RuleResult:
        self.notes = []
        rule = _dict(rule)
        sources = [_dict(f.get("source")) for f in map(_dict, _list(rule.get("from")))]
        operations = [_dict(t.get("operation")) for t in map(_dict, _list(rule.get("to")))]
        conditions = [_dict(c) for c in _list(rule.get("when"))]

        http_fields = sorted({k for s in sources for k in s if k in _HTTP_SOURCE_FIELDS}
                             | {k for o in operations for k in o if k in _HTTP_OPERATION_FIELDS}
                             | {f"when {c.get('key')}" for c in conditions
                                if str(c.get("key") or "").startswith("request.")})
        blockers: list[_Outcome] = []
        if http_fields and not self.peer.is_http:
            if self.widening:
                self._note(f"{self.action} {self.ref} rule {index}: HTTP-only {', '.join(http_fields)} cannot be "
                           "checked on TCP; Istio treats them as matching")
            else:
                # Istio drops such a rule from the TCP filter altogether
                self._note(f"ALLOW {self.ref} rule {index} uses HTTP-only {', '.join(http_fields)}: Istio ignores "
                           f"the rule for TCP traffic on port {self.peer.port}")
                blockers.append(_Outcome(_MISS, "http", f"HTTP ({', '.join(http_fields)} on a TCP port)"))

        parts = [self._any_of([self.source(s, index) for s in sources]) if sources else _RuleResult(_MATCH),
                 self._any_of([self.operation(o, index) for o in operations]) if operations else _RuleResult(_MATCH)]
        parts += [_combine(self.condition(c, index)) for c in conditions]
        result = _all_of(parts)
        if blockers:
            result = _RuleResult(_MISS, blockers + result.lacks)
        result.notes = self.notes
        return result

    @staticmethod
    def _any_of(alternatives: list[list[_Outcome]]) -> _RuleResult:
        results = [_combine(a) for a in alternatives]
        for status in (_MATCH, _UNKNOWN):
            for r in results:
                if r.status == status:
                    return r
        return min(results, key=lambda r: len(r.lacks))


def _combine(outcomes: list[_Outcome]) -> _RuleResult:
    lacks = [o for o in outcomes if o.status == _MISS]
    if lacks:
        return _RuleResult(_MISS, lacks)
    conditions = [o.text for o in outcomes if o.status == _UNKNOWN]
    return _RuleResult(_UNKNOWN if conditions else _MATCH, conditions=conditions)


def _all_of(parts: list[_RuleResult]) -> _RuleResult:
    lacks = [lack for p in parts for lack in p.lacks]
    if lacks:
        return _RuleResult(_MISS, lacks)
    conditions = [c for p in parts for c in p.conditions]
    return _RuleResult(_UNKNOWN if conditions else _MATCH, conditions=conditions)


def _request_attribute(key: str, request: Mapping | None) -> str | None:
    """The value of a `request.*` attribute from the request details we were given, or None if not given.

    request keys: method, path, host, headers (dict; names compared case-insensitively), request_principal
    (`<iss>/<sub>`), claims (dict), audiences, presenter.
    """
    if request is None:
        return None
    m = re.fullmatch(r"request\.headers\[(.+)\]", key)
    if m:
        headers = request.get("headers")
        if not isinstance(headers, Mapping):
            return None
        lowered = {str(k).lower(): v for k, v in headers.items()}
        # headers given: a header not among them is absent, and "" matches no value, not even `*`
        return str(lowered.get(m.group(1).lower(), ""))
    m = re.fullmatch(r"request\.auth\.claims\[([^\]]+)\]", key)
    if m:
        claims = request.get("claims")
        if not isinstance(claims, Mapping) or m.group(1) not in claims:
            return None
        return str(claims[m.group(1)])
    simple = {"request.auth.principal": "request_principal", "request.auth.audiences": "audiences",
              "request.auth.presenter": "presenter"}.get(key)
    value = request.get(simple) if simple else None
    return str(value) if value is not None else None


# ---------------------------------------------------------------------------------------------- scope

def _scope(policy: Mapping, root_namespace: str, dest_namespace: str, dest_labels: Mapping) -> str:
    """"applies", "elsewhere" (another namespace or selector), "targetref" or "dry-run"."""
    meta, spec = _dict(policy.get("metadata")), _dict(policy.get("spec"))
    namespace = meta.get("namespace") or "default"
    if namespace not in (dest_namespace, root_namespace):
        return "elsewhere"
    if spec.get("targetRef") or spec.get("targetRefs"):
        return "targetref"
    if not _labels_match(_dict(_dict(spec.get("selector")).get("matchLabels")), dest_labels):
        return "elsewhere"
    if str(_dict(meta.get("annotations")).get("istio.io/dry-run", "")).lower() == "true":
        return "dry-run"
    return "applies"


def policy_applies(policy: Mapping, root_namespace: str, dest_namespace: str, dest_labels: Mapping) -> bool:
    """Whether a sidecar of a workload in `dest_namespace` with `dest_labels` enforces this AuthorizationPolicy."""
    return _scope(policy, root_namespace, dest_namespace, dest_labels) == "applies"


# ---------------------------------------------------------------------------------------------- evaluation

def evaluate_authz(policies: Iterable[Mapping], root_namespace: str, dest_namespace: str,
                   dest_labels: Mapping[str, str], source_principal: str | None, source_namespace: str | None,
                   port: int, is_http: bool, request: Mapping | None = None, *,
                   source_ip: str | None = None) -> IstioDecision:
    """Istio's decision for traffic from `source_principal` (None: plaintext) to `port` of one workload.

    `request` (HTTP only) may carry method, path, host, headers, request_principal, claims; attributes it
    leaves out make rules that test them conditional. `source_ip` lets ipBlocks and `source.ip` be checked.
    """
    peer = _Peer.build(source_principal, source_namespace, port, is_http, request, source_ip)
    notes: list[str] = []
    by_action: dict[str, list[Mapping]] = {a: [] for a in _ACTIONS}
    scoped: list[tuple[str, str, Mapping]] = []
    for policy in policies:
        scope = _scope(policy, root_namespace, dest_namespace, dest_labels) if isinstance(policy, Mapping) else ""
        if scope not in ("", "elsewhere"):
            scoped.append((policy_ref(policy), scope, policy))
    for ref, scope, policy in sorted(scoped, key=lambda item: item[0]):
        if scope == "targetref":
            notes.append(f"{ref} uses targetRefs (a gateway or waypoint enforces it), not this workload's sidecar")
        elif scope == "dry-run":
            notes.append(f"{ref} is in dry-run (istio.io/dry-run): Istio logs its result and enforces nothing")
        elif scope == "applies":
            action = str(_dict(policy.get("spec")).get("action") or "ALLOW")
            if action in by_action:
                by_action[action].append(policy)
            else:
                notes.append(f"{ref} has unknown action {action!r}; ignored")

    def matches(policy: Mapping, action: str) -> list[tuple[int, _RuleResult]]:
        evaluator = _RuleEvaluator(peer, action, policy_ref(policy),
                                   _dict(policy.get("metadata")).get("namespace") or "default")
        return [(i, evaluator.rule(rule, i)) for i, rule in enumerate(_list(_dict(policy.get("spec")).get("rules")))]

    on = f"on {port}"
    conditional = False

    custom: tuple[str, int, str] | None = None
    for policy in by_action["CUSTOM"]:
        for i, result in matches(policy, "CUSTOM"):
            if result.status != _MISS:
                provider = str(_dict(_dict(policy.get("spec")).get("provider")).get("name") or "(no provider)")
                qualifier = f" for requests with {'; '.join(result.conditions)}" if result.status == _UNKNOWN else ""
                notes.extend(result.notes)
                notes.append(f"custom: decided by external authorizer {provider} ({policy_ref(policy)} rule {i} "
                             f"matches{qualifier}); we cannot know its answer and treat it as not denying")
                custom = custom or (policy_ref(policy), i, provider)
                break

    deny_hit: tuple[str, int] | None = None
    for policy in by_action["DENY"]:
        for i, result in matches(policy, "DENY"):
            if result.status != _MISS:
                notes.extend(result.notes)
            if result.status == _MATCH and deny_hit is None:
                deny_hit = (policy_ref(policy), i)
            elif result.status == _UNKNOWN:
                conditional = True
                notes.append(f"DENY {policy_ref(policy)} rule {i} refuses {peer.who}'s requests with "
                             f"{'; '.join(result.conditions)}")
    if deny_hit:
        return IstioDecision(False, "DENY", f"DENY policy {deny_hit[0]} rule {deny_hit[1]} refuses {peer.who} {on}",
                             matched=deny_hit, applicable_allow=tuple(policy_ref(p) for p in by_action["ALLOW"]),
                             notes=_unique(notes), conditional=False)

    allows = by_action["ALLOW"]
    applicable_allow = tuple(policy_ref(p) for p in allows)
    if not allows:
        if custom:
            return IstioDecision(True, "CUSTOM", f"custom: decided by external authorizer {custom[2]} "
                                 f"({custom[0]} rule {custom[1]}); no ALLOW policy applies, so Istio itself "
                                 f"allows {peer.who} {on}", matched=custom[:2], notes=_unique(notes),
                                 conditional=conditional)
        return IstioDecision(True, "NONE", f"no ALLOW policy applies to this workload, so Istio allows {peer.who} "
                             f"{on}", notes=_unique(notes), conditional=conditional)

    full: tuple[str, int, list[str]] | None = None
    partial: tuple[str, int, list[str], list[str]] | None = None
    miss_notes: list[str] = []
    misses: list[NearMiss] = []
    empty: list[str] = []
    for policy in allows:
        ref = policy_ref(policy)
        results = matches(policy, "ALLOW")
        if not results:
            empty.append(ref)
        for i, result in results:
            if result.status == _MATCH:
                full = full or (ref, i, result.notes)
            elif result.status == _UNKNOWN:
                partial = partial or (ref, i, result.conditions, result.notes)
            else:
                miss_notes.extend(result.notes)
                misses.append(NearMiss(ref, i, tuple(o.text for o in result.lacks),
                                       tuple(o.field for o in result.lacks)))

    if full or partial:
        if full:
            ref, i, rule_notes = full
            reason = f"ALLOW policy {ref} rule {i} admits {peer.who} {on}"
        else:
            ref, i, conds, rule_notes = partial
            conditional = True
            reason = f"ALLOW policy {ref} rule {i} admits {peer.who} {on} only for requests with {'; '.join(conds)}"
        if custom:
            reason = f"custom: decided by external authorizer {custom[2]}; then {reason}"
        return IstioDecision(True, "CUSTOM" if custom else "ALLOW", reason, matched=(ref, i),
                             applicable_allow=applicable_allow, notes=_unique(notes + rule_notes),
                             conditional=conditional)

    misses.sort(key=lambda m: (len(m.lacks), m.policy, m.rule_index))
    return IstioDecision(False, "ALLOW", _denial_reason(peer.who, on, allows, misses, empty),
                         applicable_allow=applicable_allow, nearest=tuple(misses), notes=_unique(notes + miss_notes))


def _unique(notes: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(notes))


def _denial_reason(who: str, on: str, allows: list[Mapping], misses: list[NearMiss], empty: list[str]) -> str:
    parts = []
    for policy in allows:
        ref = policy_ref(policy)
        if ref in empty:
            parts.append(f"{ref} (no rules: allows nothing)")
            continue
        best = next(m for m in misses if m.policy == ref)  # misses are sorted: the first is the nearest
        words = list(dict.fromkeys(_FRIENDLY.get(f, f.replace("when:", "when ")) for f in best.fields))
        parts.append(f"{ref} (rule {best.rule_index} lacks {', '.join(words)})")
    return f"no ALLOW policy admits {who} {on}: {', '.join(parts)}"


# ---------------------------------------------------------------------------------------------- PeerAuthentication

MTLS_MODES = ("STRICT", "PERMISSIVE", "DISABLE", "UNSET")


@dataclass(frozen=True)
class MtlsDecision:
    """The mTLS mode a workload's sidecar accepts on one port, and which PeerAuthentication set it.

    level: "port" (portLevelMtls of a workload policy), "workload", "namespace", "mesh" or "default".
    """

    mode: str
    decided_by: str | None
    level: str
    reason: str

    def to_dict(self) -> dict:
        return {"mode": self.mode, "decided_by": self.decided_by, "level": self.level, "reason": self.reason}


def _mode(value) -> str:
    mode = str(_dict(value).get("mode") or "UNSET").upper()
    return mode if mode in MTLS_MODES else "UNSET"


def _oldest(candidates: list[Mapping]) -> Mapping | None:
    # Istio picks the oldest when several policies of one level apply; name breaks ties
    return min(candidates, key=lambda p: (str(_dict(p.get("metadata")).get("creationTimestamp") or ""),
                                          policy_ref(p)), default=None)


def mtls_decision(peer_authentications: Iterable[Mapping], root_namespace: str, namespace: str,
                  labels: Mapping[str, str], port: int) -> MtlsDecision:
    """Istio's precedence: the workload's selector policy (its portLevelMtls for `port` first), then the
    namespace-wide policy, then the mesh-wide one in the root namespace; UNSET inherits from the next level;
    nothing at all means PERMISSIVE."""
    items = [p for p in peer_authentications if isinstance(p, Mapping)]

    def ns_of(p: Mapping) -> str:
        return _dict(p.get("metadata")).get("namespace") or "default"

    def selector(p: Mapping) -> dict:
        return _dict(_dict(_dict(p.get("spec")).get("selector")).get("matchLabels"))

    workload = _oldest([p for p in items if ns_of(p) == namespace and selector(p)
                        and _labels_match(selector(p), labels)])
    namespace_wide = _oldest([p for p in items if ns_of(p) == namespace and not selector(p)])
    mesh_wide = _oldest([p for p in items if ns_of(p) == root_namespace and not selector(p)])

    chain: list[tuple[str, Mapping | None, str]] = []
    if workload is not None:
        port_levels = _dict(_dict(workload.get("spec")).get("portLevelMtls"))
        port_level = {str(k): v for k, v in port_levels.items()}.get(str(port))
        if port_level is not None:
            chain.append(("port", workload, _mode(port_level)))
        chain.append(("workload", workload, _mode(_dict(workload.get("spec")).get("mtls"))))
    for level, policy in (("namespace", namespace_wide), ("mesh", mesh_wide)):
        if policy is not None:
            chain.append((level, policy, _mode(_dict(policy.get("spec")).get("mtls"))))

    for position, (level, policy, mode) in enumerate(chain):
        if mode != "UNSET":
            ref = policy_ref(policy)
            where = {"port": f"its portLevelMtls for port {port}", "workload": "its workload selector",
                     "namespace": "namespace-wide", "mesh": "mesh-wide from the root namespace"}[level]
            unset = dict.fromkeys(policy_ref(p) for _, p, _ in chain[:position])
            suffix = f" ({', '.join(unset)} leaves it UNSET)" if unset else ""
            return MtlsDecision(mode, ref, level, f"PeerAuthentication {ref} sets {mode} ({where}){suffix}")
    if chain:
        return MtlsDecision("PERMISSIVE", None, "default", "every applicable PeerAuthentication leaves the mode "
                            "UNSET, so Istio's default PERMISSIVE applies")
    return MtlsDecision("PERMISSIVE", None, "default", "no PeerAuthentication applies, so Istio's default "
                        "PERMISSIVE applies")


def mtls_mode(peer_authentications: Iterable[Mapping], root_namespace: str, namespace: str,
              labels: Mapping[str, str], port: int) -> str:
    """"STRICT", "PERMISSIVE" or "DISABLE" (never UNSET: that inherits, down to Istio's default PERMISSIVE)."""
    return mtls_decision(peer_authentications, root_namespace, namespace, labels, port).mode


# ---------------------------------------------------------------------------------------------- mesh membership

@dataclass(frozen=True)
class MeshMembership:
    in_mesh: bool
    reason: str


def _injection_opt(meta: Mapping) -> str:
    """The pod's own `sidecar.istio.io/inject` choice ("true", "false" or "") from its label or annotation."""
    label = str(_dict(meta.get("labels")).get("sidecar.istio.io/inject", "")).lower()
    annotation = str(_dict(meta.get("annotations")).get("sidecar.istio.io/inject", "")).lower()
    if "false" in (label, annotation):
        return "false"
    return "true" if label == "true" else ""  # the webhook's object selector looks at the label only


def mesh_membership(pod: Mapping | None, namespace: Mapping | None,
                    template_labels: Mapping[str, str] | None = None) -> MeshMembership:
    """Whether a pod (or a workload's pod template, given as a pod dict or just its labels) runs an Istio
    sidecar, and why we think so."""
    pod = _dict(pod)
    meta, spec = _dict(pod.get("metadata")), _dict(pod.get("spec"))
    labels = {**_dict(meta.get("labels")), **dict(template_labels or {})}
    meta = {**meta, "labels": labels}
    containers = [_dict(c) for c in _list(spec.get("containers")) + _list(spec.get("initContainers"))]
    if any(c.get("name") == SIDECAR_CONTAINER for c in containers):
        return MeshMembership(True, f"it has an {SIDECAR_CONTAINER} container")
    if labels.get("security.istio.io/tlsMode") == "istio":
        return MeshMembership(True, "it is labelled security.istio.io/tlsMode=istio")
    opt = _injection_opt(meta)
    if opt == "false":
        return MeshMembership(False, "it opts out with sidecar.istio.io/inject=false")
    ns_meta = _dict(_dict(namespace).get("metadata"))
    ns_name = ns_meta.get("name") or meta.get("namespace") or "its namespace"
    ns_labels = _dict(ns_meta.get("labels"))
    injection = str(ns_labels.get("istio-injection", ""))
    # an admitted pod whose spec lists containers but no sidecar was created before injection was switched on
    caveat = (f" (but its spec lists no {SIDECAR_CONTAINER} container: a pod created before that runs without a "
              "sidecar until restarted)") if containers and pod.get("status") else ""
    if injection == "enabled":
        return MeshMembership(True, f"namespace {ns_name} has istio-injection=enabled{caveat}")
    if injection == "disabled":
        return MeshMembership(False, f"namespace {ns_name} has istio-injection=disabled")
    if ns_labels.get("istio.io/rev"):
        return MeshMembership(True, f"namespace {ns_name} has istio.io/rev={ns_labels['istio.io/rev']}{caveat}")
    if opt == "true" or labels.get("istio.io/rev"):
        what = "sidecar.istio.io/inject=true" if opt == "true" else f"istio.io/rev={labels['istio.io/rev']}"
        return MeshMembership(True, f"it asks for injection with the label {what}{caveat}")
    return MeshMembership(False, "no sidecar container, no tlsMode label, and no injection enabled for it")


def in_mesh(pod: Mapping | None, namespace: Mapping | None, template_labels: Mapping[str, str] | None = None) -> bool:
    """Whether the pod (or pod template) has, or gets, an Istio sidecar."""
    return mesh_membership(pod, namespace, template_labels).in_mesh
