"""The policy engine: Cilium's verdict for a connection, per direction, reconstructed from the cluster state.

For one connection it evaluates the source's egress and the destination's ingress separately (Cilium needs both),
then Istio's authorization where the destination has a sidecar. In one direction:

1. an endpoint that is not Cilium's (world, an IP outside the cluster) enforces nothing;
2. a deny rule whose peer and port match drops it (Hubble: POLICY_DENY, 181), whatever allows it;
3. traffic from the local host to a pod is allowed (Cilium's allow-localhost default);
4. a side no rule isolates (no selecting rule with a section for the direction, or enableDefaultDeny false) is open;
5. an allow rule whose peer and port match admits it, conditionally when only L7 rules match;
6. otherwise it is default deny (Hubble: POLICY_DENIED, 133), and the nearest rules say what they lack.

Everything is cached per identity (the label set), not per pod. `what_if` returns a view that shares all that
did not change and can list the connections the change newly allows.
"""

from __future__ import annotations

import heapq
import ipaddress
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import replace

from hubbletui.flows.labels import LabelIndex, LabelSet, NAMESPACE_LABEL, parse_hubble_labels
from hubbletui.cluster.model import WORKLOAD_KINDS, Change, ClusterState, object_key
from hubbletui.errors import HubbleTuiError
from hubbletui.policy import istio_layer
from hubbletui.policy.cilium import compile_cilium_policy
from hubbletui.policy.completeness import relevant, unread_kinds
from hubbletui.policy.inventory import SUBJECT_KINDS, Inventory
from hubbletui.policy.istio_validate import validate_authorization_policy
from hubbletui.policy.k8s import compile_network_policy
from hubbletui.policy.memo import Memo, change_key, subject_key
from hubbletui.policy.labels import DEFAULT_CLUSTER
from hubbletui.policy.ports import ALL_PORTS, PortSet, normalise_protocol
from hubbletui.policy.records import Condition, Hit, NearRule
from hubbletui.policy.selectors import requirement_lack
from hubbletui.policy.result import ALLOWED, DENIED, LayerResult, TraceResult
from hubbletui.policy.rules import (
    ALLOW,
    DENY,
    EGRESS,
    INGRESS,
    CompiledPolicy,
    PolicyKey,
    Rule,
)
from hubbletui.policy.subjects import (
    IDENTITY_NAMES,
    RESERVED_IDENTITIES,
    Subject,
    entity_subject,
    ip_subject,
    node_subject,
)

CILIUM_KINDS = ("NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy")
ISTIO_KINDS = ("AuthorizationPolicy", "PeerAuthentication")
RESOLVER_KINDS = ("EndpointSlice", "CiliumCIDRGroup")
ENFORCEMENT_MODES = ("default", "always", "never")
NEAREST_LIMIT = 5
# peers a blast radius always considers besides the cluster's own workloads
REFERENCE_ENTITIES = ("world", "host", "remote-node", "kube-apiserver")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[-A-Za-z0-9_]*[A-Za-z0-9])?(?:\.[A-Za-z0-9_](?:[-A-Za-z0-9_]*"
                       r"[A-Za-z0-9])?)+\.?$")


class PolicyEngine:
    """Build once from a ClusterState; ``follow=True`` keeps it current as the state changes."""

    def __init__(self, state: ClusterState | None = None, *, cluster_name: str = DEFAULT_CLUSTER,
                 enforcement_mode: str = "default", istio_root_namespace: str = "istio-system",
                 host_firewall: bool | None = None, host_network_pods: str = "host",
                 egress_named_ports: str = "cluster", follow: bool = False):
        if enforcement_mode not in ENFORCEMENT_MODES:
            raise HubbleTuiError(f"unknown policy enforcement mode {enforcement_mode!r}")
        self.state = state if state is not None else ClusterState()
        self.cluster_name = cluster_name
        self.enforcement_mode = enforcement_mode
        self.istio_root_namespace = istio_root_namespace
        # Cilium's --enable-host-firewall: None = on when the state holds a host policy (why else write one)
        self.host_firewall_setting = host_firewall
        if host_network_pods not in ("host", "pod"):
            raise HubbleTuiError(f"unknown hostNetwork pod model {host_network_pods!r} (host or pod)")
        self.host_network_pods = host_network_pods
        if egress_named_ports not in ("cluster", "destination"):
            raise HubbleTuiError(f"unknown egress named-port model {egress_named_ports!r} (cluster or destination)")
        self.egress_named_ports = egress_named_ports
        self.base: PolicyEngine | None = None  # set on what-if views
        self.changed_policies: set[PolicyKey] = set()
        self.changed_namespaces: set[str] = set()
        self._lock = threading.RLock()
        self._listeners: list = []
        self.memo = Memo()
        # kinds the state could not hold (see policy.completeness): every answer that depends on them says so
        self.incomplete: dict[str, str] = unread_kinds(self.state)
        self._implied: dict[str, str] = {}  # what mark_incomplete added: kept when readability changes
        self._load(self.state)
        self._unsubscribe = self.state.subscribe(self.apply) if follow else None
        self._unsubscribe_readability = self.state.on_readability(self._readability_changed) if follow else None

    def mark_incomplete(self, reasons: dict[str, str]) -> None:
        """Add what else the state is known to lack (the flows of a run imply it: see diagnose.implied); answers
        from now on carry it, so the answers remembered so far are forgotten."""
        self._implied.update(reasons)
        if reasons.keys() - self.incomplete.keys():
            self.incomplete.update(reasons)
            self.memo.clear()

    def _readability_changed(self) -> None:
        """A live kind became (un)readable: answers from now on say so, or stop saying so."""
        with self._lock:
            self.incomplete = {**unread_kinds(self.state), **self._implied}
            self.memo.clear()

    # building ----------------------------------------------------------------------------------
    def _load(self, state: ClusterState) -> None:
        self.inventory = Inventory.from_objects(((k, o) for k in SUBJECT_KINDS for o in state.list(k)),
                                                self.cluster_name, self.host_network_pods == "pod")
        self.services: dict[tuple[str, str], dict] = {object_key(o): o for o in state.list("Service")}
        # what toServices and CIDR-group peers resolve through (kept per kind; policies recompile on change)
        self.resolvers: dict[str, dict[tuple[str, str], dict]] = {
            kind: {object_key(o): o for o in state.list(kind)} for kind in RESOLVER_KINDS}
        self.nodes: dict[str, dict] = {object_key(o)[1]: o for o in state.list("Node")}
        self._node_ips: dict[str, str] | None = None
        self._cluster_ports: dict | None = None  # egress named ports, cluster-wide (named_ports_for)
        self.istio_objects: dict[str, dict[tuple[str, str], dict]] = {
            kind: {object_key(o): o for o in state.list(kind)} for kind in ISTIO_KINDS}
        self.policies: dict[PolicyKey, CompiledPolicy] = {}
        self._rules_by_ns: dict[str | None, dict[PolicyKey, tuple[Rule, ...]]] = {}
        self._flat_by_ns: dict[str | None, tuple[Rule, ...]] = {}
        self._selection: dict = {}  # identity -> (ingress rules, egress rules) selecting it
        self._selection_parent: dict | None = None  # a what-if view's parent's selections (see _reselect)
        self._patch_keys: set[PolicyKey] = set()
        self._patch_rules: list[Rule] = []
        self._resolved: dict[str, Subject] = {}
        self._endpoints: list[Subject] | None = None
        self._connections: dict = {}  # (src, dst identity, dst named ports) -> PortSet
        self._endpoint_index: LabelIndex | None = None
        self._peer_index: tuple[dict[str, list[Rule]], list[Rule]] | None = None
        self._rejected: list[CompiledPolicy] | None = None
        self._authz_split: tuple | None = None
        for kind in CILIUM_KINDS:
            for obj in state.list(kind):
                self._set_policy(self._compile(obj))

    def _compile(self, obj: dict) -> CompiledPolicy:
        if obj.get("kind") == "NetworkPolicy":
            return compile_network_policy(obj)
        return compile_cilium_policy(obj, list(self.services.values()), cluster=self.cluster_name,
                                     endpoint_slices=list(self.resolvers["EndpointSlice"].values()),
                                     cidr_groups=list(self.resolvers["CiliumCIDRGroup"].values()))

    def rejected_policies(self) -> list[CompiledPolicy]:
        """Policies Cilium's agent refuses to import (so they are not enforced), by kind and name."""
        if self._rejected is None:
            self._rejected = [p for k, p in sorted(self.policies.items(), key=lambda kv: _policy_order(kv[0]))
                              if p.rejected]
        return self._rejected

    def authorization_policies(self) -> tuple[list[dict], list[tuple[dict, str]]]:
        """(AuthorizationPolicies Istio applies, [(one it refuses, why)]): istiod ignores an invalid one."""
        current = self.istio_objects["AuthorizationPolicy"]
        cached = self._authz_split
        if cached is None or cached[0] is not current:
            valid, refused = [], []
            for obj in self.policy_objects("AuthorizationPolicy"):
                problem = validate_authorization_policy(obj)
                if problem:
                    refused.append((obj, problem))
                else:
                    valid.append(obj)
            cached = self._authz_split = (current, valid, refused)
        return cached[1], cached[2]

    def rejected_for(self, subject: Subject) -> list[str]:
        """One line per rejected policy written for ``subject``: it would select it, but is not in force."""
        if not subject.is_endpoint:
            return []
        return [f"{p.key.ref} would apply to {subject.id} but is rejected by Cilium ({p.rejected}): it is not "
                "enforced" for p in self.rejected_policies() if any(s.matches(subject.labels) for s in p.meant_for)]

    def _set_policy(self, compiled: CompiledPolicy) -> None:
        self._drop_policy(compiled.key, reselect=False)
        self.policies[compiled.key] = compiled
        grouped: dict[str | None, list[Rule]] = {}
        for order, rule in enumerate(compiled.rules):
            rule.order = order
            grouped.setdefault(rule.subject.pinned_namespace(), []).append(rule)
        for ns, rules in grouped.items():
            self._rules_by_ns[ns] = {**self._rules_by_ns.get(ns, {}), compiled.key: tuple(rules)}
            self._flat_by_ns.pop(ns, None)
        self._reselect(compiled.key, compiled.rules)

    def _drop_policy(self, key: PolicyKey, reselect: bool = True) -> None:
        old = self.policies.pop(key, None)
        if old is None:
            return
        for ns in {rule.subject.pinned_namespace() for rule in old.rules}:
            remaining = {k: v for k, v in self._rules_by_ns.get(ns, {}).items() if k != key}
            self._rules_by_ns[ns] = remaining
            self._flat_by_ns.pop(ns, None)
        if reselect:
            self._reselect(key, ())

    def _reselect(self, key: PolicyKey, rules: tuple[Rule, ...]) -> None:
        """One policy changed: selections cached here are stale. A what-if view keeps its parent's selections
        and patches each when first asked (it adds a policy, then asks about hundreds of identities)."""
        self._peer_index = None
        self._rejected = None
        self._selection = {}
        if self._selection_parent is not None:
            self._patch_keys.add(key)
            self._patch_rules = [r for r in self._patch_rules if r.policy != key] + list(rules)

    # changes (live updates and what-if views) --------------------------------------------------
    def subscribe(self, listener) -> None:
        """``listener(engine, policy_keys, namespaces)`` after every applied change (the graph uses it)."""
        self._listeners.append(listener)

    def close(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
        if self._unsubscribe_readability:
            self._unsubscribe_readability()
            self._unsubscribe_readability = None

    def apply(self, change: Change) -> None:
        """Apply one ClusterState change in place (the state's subscribe callback)."""
        with self._lock:
            if change.action == "upsert" and change.obj is not None:
                keys, namespaces = self._upsert(change.obj)
            else:
                keys, namespaces = self._delete(change.kind, change.key[0], change.key[1])
            self.memo.clear()
        for listener in list(self._listeners):
            listener(self, keys, namespaces)

    def _upsert(self, obj: dict, rollout: bool = False) -> tuple[set[PolicyKey], set[str]]:
        self._resolved, self._connections = {}, {}
        kind = obj.get("kind", "")
        if kind in CILIUM_KINDS:
            compiled = self._compile(obj)
            self._set_policy(compiled)
            return {compiled.key}, set()
        if kind == "Service":
            self.services[object_key(obj)] = obj
            return self._recompile_service_users(), set()
        if kind in RESOLVER_KINDS:
            self.resolvers[kind] = {**self.resolvers[kind], object_key(obj): obj}
            return self._recompile_service_users(), set()
        if kind == "Node":
            self.nodes = {**self.nodes, object_key(obj)[1]: obj}
            self._node_ips = None
            return set(), set()
        if kind in ISTIO_KINDS:
            self.istio_objects[kind] = {**self.istio_objects[kind], object_key(obj): obj}
            return set(), set()
        if kind in SUBJECT_KINDS:
            # selection is cached per identity: changed labels simply miss the cache
            self._endpoints = self._endpoint_index = self._cluster_ports = None
            return set(), {self.inventory.upsert(kind, obj, rollout)}
        raise HubbleTuiError(f"cannot model a {kind or 'kindless object'}")

    def _delete(self, kind: str, namespace: str, name: str) -> tuple[set[PolicyKey], set[str]]:
        self._resolved, self._connections = {}, {}
        if kind in CILIUM_KINDS:
            key = PolicyKey(kind, "" if kind == "CiliumClusterwideNetworkPolicy" else namespace, name)
            self._drop_policy(key)
            return {key}, set()
        if kind == "Service":
            self.services.pop((namespace, name), None)
            return self._recompile_service_users(), set()
        if kind in RESOLVER_KINDS:
            self.resolvers[kind] = {k: v for k, v in self.resolvers[kind].items() if k != (namespace, name)}
            return self._recompile_service_users(), set()
        if kind == "Node":
            self.nodes = {k: v for k, v in self.nodes.items() if k != name}
            self._node_ips = None
            return set(), set()
        if kind in ISTIO_KINDS:
            self.istio_objects[kind] = {k: v for k, v in self.istio_objects[kind].items() if k != (namespace, name)}
            return set(), set()
        if kind in SUBJECT_KINDS:
            self._endpoints = self._endpoint_index = self._cluster_ports = None
            return set(), {self.inventory.delete(kind, namespace, name)}
        return set(), set()

    def _recompile_service_users(self) -> set[PolicyKey]:
        users = [p for p in self.policies.values() if p.uses_services and p.obj is not None]
        for policy in users:
            self._set_policy(self._compile(policy.obj))
        return {p.key for p in users}

    def what_if(self, upserts: Iterable[dict] = (), deletes: Iterable[dict | tuple[str, str, str]] = (),
                rollout: bool = True) -> PolicyEngine:
        """A view of this engine with ``upserts`` applied and ``deletes`` ((kind, namespace, name) or objects)
        removed. Only what changed is recompiled or rebuilt; the rest is shared. The view's ``base`` is self.
        An upserted workload is rolled out: its pods take the new pod template (labels, ports, service
        account), which is how "what if this template had these labels" is asked. The same change asked again
        gets the same view. ``rollout=False`` keeps pods as given (a past state, where the pods' own versions
        are known)."""
        upserts, deletes = list(upserts), list(deletes)
        key = (change_key(upserts, deletes), rollout)
        known = self.memo.get("view", key)
        if known is not None:
            return known
        view = self._fork()
        for obj in upserts:
            keys, namespaces = view._upsert(obj, rollout=rollout)
            view.changed_policies |= keys
            view.changed_namespaces |= namespaces
        for item in deletes:
            if isinstance(item, dict):
                kind = item.get("kind", "")
                ns, name = object_key(item)
            else:
                kind, ns, name = item
            keys, namespaces = view._delete(kind, ns or "", name)
            view.changed_policies |= keys
            view.changed_namespaces |= namespaces
        self.memo.put("view", key, view)
        return view

    def _fork(self) -> PolicyEngine:
        view = object.__new__(PolicyEngine)
        view.state = self.state
        view.cluster_name = self.cluster_name
        view.enforcement_mode = self.enforcement_mode
        view.istio_root_namespace = self.istio_root_namespace
        view.host_firewall_setting = self.host_firewall_setting
        view.host_network_pods = self.host_network_pods
        view.egress_named_ports = self.egress_named_ports
        view.incomplete = self.incomplete
        view.nodes, view._node_ips = self.nodes, self._node_ips
        view._cluster_ports = self._cluster_ports
        view.base = self
        view.changed_policies, view.changed_namespaces = set(), set()
        view._lock = threading.RLock()
        view._listeners = []
        view.memo = Memo(self.memo.counts)
        view._unsubscribe = view._unsubscribe_readability = None
        view._implied = dict(self._implied)
        view.inventory = self.inventory.copy()
        view.services = dict(self.services)
        view.resolvers = dict(self.resolvers)
        view.istio_objects = dict(self.istio_objects)
        view.policies = dict(self.policies)
        view._rules_by_ns = dict(self._rules_by_ns)
        view._flat_by_ns = dict(self._flat_by_ns)
        view._selection = {}
        view._selection_parent = self._selection
        view._patch_keys, view._patch_rules = set(), []
        view._resolved = {}
        view._endpoints = self._endpoints
        view._connections = {}
        view._endpoint_index = self._endpoint_index
        view._peer_index = self._peer_index
        view._rejected = self._rejected
        view._authz_split = self._authz_split
        return view

    # resolving names ---------------------------------------------------------------------------
    def resolve(self, ref: str | Subject) -> Subject:
        """REF: ``ns/pod``, ``ns/workload``, ``ns/Kind/name``, an entity (``world``, ``reserved:host``), an IP,
        or a DNS name (world, as seen through a toFQDNs rule)."""
        if isinstance(ref, Subject):
            return ref
        found = self._resolved.get(ref)
        if found is None:
            found = self._resolved[ref] = self._resolve(ref)
        return found

    def _resolve(self, ref: str) -> Subject:
        text = str(ref).strip()
        if not text:
            raise HubbleTuiError("an empty reference: name ns/pod, ns/workload, an entity or an IP")
        entity = text.removeprefix("reserved:")
        if entity in RESERVED_IDENTITIES:
            return entity_subject(entity)
        try:
            ipaddress.ip_address(text)
        except ValueError:
            pass
        else:
            pods = [p for p in self.inventory.by_ip(text) if not p.host_network]
            if pods:
                return sorted(pods, key=lambda s: s.id)[0]
            node = self.node_by_ip(text)
            if node:
                return self._node(node, ip=text)
            pods = self.inventory.by_ip(text)
            if pods:
                return sorted(pods, key=lambda s: s.id)[0]
            return ip_subject(text)
        if text.startswith("node/") and text[5:]:
            if text[5:] not in self.nodes:
                raise HubbleTuiError(f"no Node named {text[5:]!r} in the cluster state")
            return self._node(text[5:])
        parts = text.split("/")
        if len(parts) == 2 and all(parts):
            ns, name = parts
            found = self.inventory.pod(ns, name) or self.inventory.workload(ns, name)
            if found:
                return found
            raise HubbleTuiError(f"no pod or workload named {name!r} in namespace {ns!r}"
                                 + self._namespace_hint(ns))
        if len(parts) == 3 and all(parts):
            ns, kind_text, name = parts
            kind = next((k for k in (*WORKLOAD_KINDS, "Pod") if k.lower() == kind_text.lower()), None)
            if kind is None:
                raise HubbleTuiError(f"{kind_text!r} is not a workload kind ({', '.join(WORKLOAD_KINDS)}, Pod)")
            found = self.inventory.pod(ns, name) if kind == "Pod" else self.inventory.workload(ns, name, kind)
            if found:
                return found
            raise HubbleTuiError(f"no {kind} named {name!r} in namespace {ns!r}" + self._namespace_hint(ns))
        if len(parts) == 1 and _HOSTNAME.match(text) and "." in text:
            return Subject(id=text, kind="fqdn", labels=entity_subject("world").labels,
                           dns_names=(text.lower().rstrip("."),))
        raise HubbleTuiError(f"cannot read {text!r} as a reference: use ns/pod, ns/workload, ns/Kind/name, "
                             f"an entity ({', '.join(sorted(RESERVED_IDENTITIES))}) or an IP")

    def _namespace_hint(self, ns: str) -> str:
        return "" if ns in self.inventory.namespaces else f" (namespace {ns!r} is not in the cluster state)"

    def subject_for_endpoint(self, endpoint) -> Subject:
        """A Hubble flow endpoint (hubbletui.flows.model.Endpoint) -> the subject the engine reasons about.

        The pod from the cluster state when it is there (by name, else by IP, else its workload's stand-in);
        otherwise a subject made from Hubble's identity labels, so a flow from a pod the state does not know is
        still evaluated by the identity Cilium gave it."""
        ns, pod_name = endpoint.namespace or "", endpoint.pod or ""
        hubble_labels = parse_hubble_labels(endpoint.labels) if endpoint.labels else None
        found = None
        if ns and pod_name:
            found = self.inventory.pod(ns, pod_name)
            if found is None and endpoint.ip:
                found = next((s for s in self.inventory.by_ip(endpoint.ip) if s.namespace == ns
                              and s.name == pod_name), None)
            if found is None:
                for _kind, name in endpoint.workloads or ():
                    stand_in = self.inventory.workload(ns, name)
                    if stand_in is not None:
                        found = Subject(id=f"{ns}/{pod_name}", kind="pod", labels=stand_in.labels, namespace=ns,
                                        name=pod_name, workload=stand_in.workload or (_kind, name),
                                        ip=endpoint.ip, named_ports=stand_in.named_ports,
                                        host_network=stand_in.host_network,
                                        service_account=stand_in.service_account, obj=stand_in.obj,
                                        notes=("the pod is not in the cluster state; its workload stands in",))
                        break
        if found is not None:
            if hubble_labels is not None and _identity_differs(found, hubble_labels):
                found = _with_note(found, "Hubble's identity labels differ from the cluster state (a stale "
                                          "snapshot?): " + ", ".join(sorted(
                                              set(hubble_labels.hubble_form()) ^ set(found.labels.hubble_form()))))
            return found
        names = tuple(getattr(endpoint, "dns_names", ()) or ())
        if hubble_labels is not None and hubble_labels.get("k8s", NAMESPACE_LABEL) is not None:
            ns = ns or hubble_labels.get("k8s", NAMESPACE_LABEL) or ""
            workload = tuple(endpoint.workloads[0]) if endpoint.workloads else None
            return Subject(id=f"{ns}/{pod_name}" if pod_name else endpoint.ref, kind="flow", labels=hubble_labels,
                           namespace=ns, name=pod_name, workload=workload, ip=endpoint.ip,
                           service_account=hubble_labels.get("k8s", "io.cilium.k8s.policy.serviceaccount") or "",
                           notes=("not in the cluster state: evaluated from Hubble's identity labels",))
        if hubble_labels is not None and hubble_labels.reserved():
            reserved = hubble_labels.reserved()
            if endpoint.ip and any(r.startswith("world") for r in reserved):
                subject = ip_subject(endpoint.ip, names)
                return Subject(id=subject.id, kind="ip", labels=hubble_labels, ip=subject.ip, dns_names=names)
            name = min(reserved, key=len)
            return Subject(id=name, kind="entity", labels=hubble_labels, ip=endpoint.ip, dns_names=names)
        if endpoint.identity in IDENTITY_NAMES:
            return replace(entity_subject(IDENTITY_NAMES[endpoint.identity]), ip=endpoint.ip)
        if endpoint.ip:
            pods = self.inventory.by_ip(endpoint.ip)
            if pods:
                return pods[0]
            return ip_subject(endpoint.ip, names)
        return Subject(id=endpoint.ref or "unknown", kind="entity", labels=entity_subject("world").labels,
                       notes=("Hubble named no identity for this endpoint; evaluated as world",))

    # hosts and nodes ----------------------------------------------------------------------------
    @property
    def host_firewall(self) -> bool:
        if self.host_firewall_setting is not None:
            return self.host_firewall_setting
        return any(r.host for p in self.policies.values() for r in p.rules)

    def node_by_ip(self, ip: str) -> str:
        """The Node whose status.addresses hold ``ip`` (InternalIP or ExternalIP), "" when none."""
        if self._node_ips is None:
            index = {}
            for name, node in self.nodes.items():
                for address in ((node.get("status") or {}).get("addresses") or []):
                    if (address or {}).get("type") in ("InternalIP", "ExternalIP") and address.get("address"):
                        try:
                            index[str(ipaddress.ip_address(address["address"]))] = name
                        except ValueError:
                            continue
            self._node_ips = index
        try:
            return self._node_ips.get(str(ipaddress.ip_address(ip)), "")
        except ValueError:
            return ""

    def _node(self, name: str, ip: str = "") -> Subject:
        node = self.nodes.get(name) or {}
        if not ip:
            for address in ((node.get("status") or {}).get("addresses") or []):
                if (address or {}).get("type") == "InternalIP":
                    ip = str(address.get("address") or "")
                    break
        return node_subject(name, ip, (node.get("metadata") or {}).get("labels") or {})

    def host_view(self, subject: Subject) -> Subject:
        """Where ``subject``'s own policy is enforced. A node or hostNetwork pod is the host endpoint of its node:
        only host policies (nodeSelector) select it, and only with the host firewall on."""
        if not subject.host_network:
            return subject
        node = self.nodes.get(subject.node) or {}
        host = node_subject(subject.node, subject.ip, (node.get("metadata") or {}).get("labels") or {}, "host")
        host = replace(host, id=subject.id, named_ports=subject.named_ports)
        host.is_endpoint = self.host_firewall
        return host

    def peer_view(self, subject: Subject, other: Subject) -> Subject:
        """``subject`` as ``other`` sees it: a node or hostNetwork pod is `host` to the pods of its own node and
        `remote-node` to everything else (pkg/identity reserved identities 1 and 6)."""
        if not subject.host_network:
            return subject
        same = bool(subject.node) and subject.node == other.node
        if same:
            return replace(self.host_view(subject), id=subject.id)
        note = () if subject.node and other.node else (
            f"{subject.id} carries the host identity: taken as remote-node, since the cluster state does not say "
            "whether both sides run on the same node",)
        return replace(node_subject(subject.node, subject.ip), id=subject.id, notes=note)

    def named_ports_for(self, direction: str, dst: Subject):
        """Ingress resolves a named port on the destination pod itself; egress through the cluster-wide map of
        every pod's named ports, where a name with two port numbers (for one protocol) resolves to nothing
        (pkg/policy/types NamedPortMultiMap.GetNamedPort: ErrDuplicateNamedPorts)."""
        if direction == INGRESS or self.egress_named_ports == "destination":
            return dst.named_ports
        if self._cluster_ports is None:
            seen: dict[str, dict[str, set[int]]] = {}
            for subject in self.inventory.subjects():
                for name, ports in subject.named_ports.items():
                    for number, proto in ports:
                        seen.setdefault(name, {}).setdefault(proto, set()).add(number)
            self._cluster_ports = {name: tuple((next(iter(nums)), proto) for proto, nums in sorted(by.items())
                                               if len(nums) == 1) for name, by in seen.items()}
        return self._cluster_ports

    # evaluating ----------------------------------------------------------------------------------
    def rules_for_namespace(self, ns: str | None) -> tuple[Rule, ...]:
        flat = self._flat_by_ns.get(ns)
        if flat is None:
            by_policy = self._rules_by_ns.get(ns, {})
            flat = tuple(r for key in sorted(by_policy, key=_policy_order) for r in by_policy[key])
            self._flat_by_ns[ns] = flat
        return flat

    def candidate_rules(self, subject: Subject) -> tuple[Rule, ...]:
        """Rules that could select ``subject``: those pinned to its namespace and those pinned to none."""
        ns = subject.labels.get("k8s", NAMESPACE_LABEL)
        return self.rules_for_namespace(ns) + self.rules_for_namespace(None) if ns else \
            self.rules_for_namespace(None)

    def rules_admitting_namespace(self, ns: str) -> list[Rule]:
        """Rules that may admit a pod of namespace ``ns`` as a peer (and every rule that may admit any pod)."""
        if self._peer_index is None and self.base is not None and not self._patch_keys:
            self._peer_index = self.base._peer_index_built()  # same policies as the parent: share its index
        if self._peer_index is None:
            by_ns: dict[str, list[Rule]] = {}
            anywhere: list[Rule] = []
            for key in sorted(self.policies, key=_policy_order):
                for rule in self.policies[key].rules:
                    namespaces = rule.peer_namespaces()
                    if namespaces is None:
                        anywhere.append(rule)
                    else:
                        for name in namespaces:
                            by_ns.setdefault(name, []).append(rule)
            self._peer_index = (by_ns, anywhere)
        return self._peer_index[0].get(ns, []) + self._peer_index[1]

    def _peer_index_built(self) -> tuple[dict[str, list[Rule]], list[Rule]]:
        self.rules_admitting_namespace("")
        return self._peer_index

    def selecting_rules(self, subject: Subject, direction: str) -> tuple[Rule, ...]:
        """Every rule (allow and deny) of ``direction`` whose subject selector selects ``subject``."""
        key = subject.labels.key
        cached = self._selection.get(key)
        if cached is None:
            inherited = self._selection_parent.get(key) if self._selection_parent is not None else None
            if inherited is not None:
                cached = self._selection[key] = inherited if not self._patch_keys else \
                    _selection_entry(*self._patched(subject, *inherited[:2]))
            else:
                ingress, egress = [], []
                if subject.is_endpoint:
                    for rule in self.candidate_rules(subject):
                        if rule.selects(subject):
                            (ingress if rule.direction == INGRESS else egress).append(rule)
                cached = self._selection[key] = _selection_entry(ingress, egress)
        return cached[0] if direction == INGRESS else cached[1]

    def _distinct_selecting(self, subject: Subject, direction: str) -> tuple[Rule, ...]:
        """`selecting_rules` with rules that say the same thing (same action, peers, ports) kept once."""
        self.selecting_rules(subject, direction)
        cached = self._selection[subject.labels.key]
        return cached[2] if direction == INGRESS else cached[3]

    def _patched(self, subject: Subject, ingress: tuple[Rule, ...], egress: tuple[Rule, ...]
                 ) -> tuple[list[Rule], list[Rule]]:
        """The parent's selection for ``subject`` with this view's changed policies swapped in."""
        keys = self._patch_keys
        new_in = [r for r in ingress if r.policy not in keys]
        new_eg = [r for r in egress if r.policy not in keys]
        added = [r for r in self._patch_rules if subject.is_endpoint and r.selects(subject)]
        if added:
            for rule in added:
                (new_in if rule.direction == INGRESS else new_eg).append(rule)
            new_in.sort(key=_rule_order)
            new_eg.sort(key=_rule_order)
        return new_in, new_eg

    def is_isolated(self, subject: Subject, direction: str) -> bool:
        if not subject.is_endpoint or self.enforcement_mode == "never":
            return False
        if self.enforcement_mode == "always":
            return True
        return any(r.default_deny for r in self.selecting_rules(subject, direction))

    def trace(self, src: str | Subject, dst: str | Subject, port: int, protocol: str = "TCP",
              nearest: bool = True) -> TraceResult:
        """The verdict for ``src`` connecting to ``dst`` on ``port``/``protocol`` (ICMP: port = ICMP type).
        ``nearest=False`` skips ranking the nearest rules of a denial (the costly part; batch answers)."""
        src_s, dst_s = self.resolve(src), self.resolve(dst)
        try:
            proto = normalise_protocol(protocol)
        except ValueError as exc:
            raise HubbleTuiError(str(exc)) from None
        if not proto.startswith("ICMP") and not 0 <= int(port) <= 65535:
            raise HubbleTuiError(f"port {port} is out of range (0-65535)")
        key = (subject_key(src_s), subject_key(dst_s), int(port), proto, nearest)
        known = self.memo.get("trace", key)
        if known is None:
            known = self._trace(src_s, dst_s, int(port), proto, nearest)
            self.memo.put("trace", key, known)
        return known

    def _trace(self, src_s: Subject, dst_s: Subject, port: int, proto: str, nearest: bool) -> TraceResult:
        src_peer, dst_peer = self.peer_view(src_s, dst_s), self.peer_view(dst_s, src_s)
        layers = [self._layer(EGRESS, self.host_view(src_s), dst_peer, dst_s, int(port), proto, nearest),
                  self._layer(INGRESS, self.host_view(dst_s), src_peer, dst_s, int(port), proto, nearest)]
        istio = istio_layer.evaluate(self, src_s, dst_s, int(port), proto)
        if istio is not None:
            layers.append(istio)
        notes = [f"{s.id}: {n}" for s in _unique(src_s, dst_s) for n in s.notes]
        notes += [n for s in _unique(src_s, dst_s) for n in self.rejected_for(s)]
        notes += [n for s in (src_peer, dst_peer) for n in s.notes if s.kind == "node" and n not in notes]
        incomplete = relevant(self.incomplete, istio is not None)
        notes += [f"incomplete cluster state: {why}: this answer may be wrong" for why in incomplete]
        if src_s.id == dst_s.id and src_s.kind in ("pod", "workload"):
            notes.append("source and destination are the same endpoint: Cilium does not police a pod "
                         "talking to itself through its own address")
        return TraceResult(src_s, dst_s, int(port), proto, layers, notes, incomplete)

    def _layer(self, direction: str, enforcer: Subject, peer: Subject, dst: Subject, port: int,
               proto: str, want_nearest: bool = True) -> LayerResult:
        where = "from" if direction == INGRESS else "to"
        if not enforcer.is_endpoint:
            if enforcer.host_network:
                return LayerResult(direction, enforcer.id, ALLOWED, "host-firewall-off",
                                   f"{enforcer.id} is the host (host networking): only host policies "
                                   f"(nodeSelector) apply to it, and the host firewall is off")
            return LayerResult(direction, enforcer.id, ALLOWED, "not-an-endpoint",
                               f"{enforcer.id} is not a Cilium endpoint: no {direction} policy applies")
        if self.enforcement_mode == "never":
            return LayerResult(direction, enforcer.id, ALLOWED, "enforcement-disabled",
                               "policy enforcement mode is never")
        rules = self.selecting_rules(enforcer, direction)
        named = self.named_ports_for(direction, dst)
        selected_by = _policy_refs(rules)
        isolating = [r for r in rules if r.default_deny]
        isolated_by = _policy_refs(isolating)
        notes = [n for r in rules for n in r.notes] + self._policy_notes(rules)
        denies = [r for r in rules if r.action == DENY and r.admits_peer(peer)
                  and r.port_match(port, proto, named)[0]]
        base = dict(selected_by=selected_by, isolated_by=isolated_by, notes=_dedupe(notes))
        if denies:
            return LayerResult(direction, enforcer.id, DENIED, "deny-rule",
                               f"a deny rule matches ({denies[0].ref}); deny rules win over every allow",
                               drop_reason="POLICY_DENY", denied_by=[_hit(r) for r in denies], **base)
        if direction == INGRESS and peer.labels.get("reserved", "host") is not None:
            return LayerResult(direction, enforcer.id, ALLOWED, "localhost",
                               "traffic from the local host to its pods is always allowed (allow-localhost)",
                               **base)
        if not (isolating or self.enforcement_mode == "always"):
            why = "no policy selects it" if not rules else "its selecting rules do not enable default deny"
            return LayerResult(direction, enforcer.id, ALLOWED, "not-isolated",
                               f"{enforcer.id} is not isolated for {direction} ({why})", **base)
        hits, l7 = [], []
        for rule in rules:
            if rule.action != ALLOW or not rule.admits_peer(peer):
                continue
            ok, rule_l7 = rule.port_match(port, proto, named)
            if ok:
                hits.append((rule, rule_l7))
        if hits:
            hits.sort(key=lambda hit: bool(hit[1]))  # a rule without L7 conditions first: it decides
            if hits[0][1]:
                l7 = _dedupe([t for _, rl7 in hits for t in rl7])
            first = hits[0][0]
            text = f"allowed by {first.ref}" + (" at L4; the proxy then filters requests by L7 rules"
                                                 if l7 else "")
            conditions = []
            if l7:
                conditions.append(Condition("l7", "L4 is allowed; the proxy then filters each request by "
                                            "L7 rules (" + "; ".join(l7) + ")"))
            if all(_by_fqdn_only(rule, peer) for rule, _ in hits):
                names = sorted({f"{p.fqdn[1]}" for rule, _ in hits for p in rule.peers
                                if p.kind == "fqdn" and p.matches(peer)})
                conditions.append(Condition("fqdn", f"allowed only for addresses {enforcer.id} resolved for "
                                            f"{', '.join(names)} through DNS that Cilium's DNS proxy saw (a DNS rule "
                                            "on its egress); a pod that cannot reach DNS, or resolved elsewhere, "
                                            "cannot use it"))
            return LayerResult(direction, enforcer.id, ALLOWED, "allowed-by-rule", text,
                               allowed_by=[_hit(r, rl7) for r, rl7 in hits], l7=l7, conditions=conditions, **base)
        nearest = self.nearest_rules(direction, enforcer, peer, dst, port, proto) if want_nearest else []
        who = ", ".join(isolated_by) if isolated_by else "policy enforcement mode always"
        return LayerResult(direction, enforcer.id, DENIED, "default-deny",
                           f"{enforcer.id} is isolated for {direction} by {who} and no {direction} rule allows "
                           f"{where} {peer.id} on {_port_text(port, proto)}",
                           drop_reason="POLICY_DENIED", nearest=nearest, **base)

    def _policy_notes(self, rules: tuple[Rule, ...]) -> list[str]:
        keys = {r.policy for r in rules}
        return [f"{k.ref}: {n}" for k in sorted(keys, key=_policy_order) for n in self.policies[k].notes
                if k in self.policies]

    def nearest_rules(self, direction: str, enforcer: Subject, peer: Subject, dst: Subject, port: int,
                      proto: str, limit: int = NEAREST_LIMIT, candidates: Iterable[Rule] | None = None
                      ) -> list[NearRule]:
        """Allow rules closest to admitting the connection, each with what it lacks: on the peer (a label, the
        namespace), the port, or the selected side itself (a rule that admits the peer but selects other pods).
        ``candidates`` defaults to every rule that could select ``enforcer`` (its namespace's and unpinned)."""
        named = self.named_ports_for(direction, dst)
        scored = []
        for order, rule in enumerate(self.candidate_rules(enforcer) if candidates is None else candidates):
            if rule.direction != direction or rule.action != ALLOW or not (rule.all_peers or rule.peers):
                continue  # deny rules and empty rules (deny-all markers) can never admit
            subject_gap = rule.subject_distance(enforcer)
            distance = subject_gap + (1 if subject_gap else 0) + rule.peer_distance(peer) \
                + (0 if rule.port_match(port, proto, named)[0] else 1)
            if distance:
                scored.append((distance, order, rule))
        out = []
        for distance, _, rule in heapq.nsmallest(limit, scored, key=lambda item: (item[0], item[1])):
            selects = rule.selects(enforcer)
            missing = [] if selects else rule.subject.missing(enforcer.labels)
            lacks = [requirement_lack(req, "subject") for req in missing]
            lacks += rule.peer_lacks(peer) + rule.port_lacks(port, proto, named)
            out.append(NearRule(_hit(rule), tuple(lacks), rule.peers_text(), rule.ports_text(), selects, distance))
        return out

    # connection sets (graph queries, blast radius) --------------------------------------------------
    def direction_ports(self, direction: str, enforcer: Subject, peer: Subject, dst: Subject) -> PortSet:
        """What ``direction`` at ``enforcer`` lets through to/from ``peer`` (named ports resolved on ``dst``)."""
        if not enforcer.is_endpoint or self.enforcement_mode == "never":
            return ALL_PORTS
        named = self.named_ports_for(direction, dst)
        denied: list[PortSet] = []
        allowed: list[PortSet] = []
        for rule in self._distinct_selecting(enforcer, direction):
            if rule.admits_peer(peer):
                (denied if rule.action == DENY else allowed).append(rule.port_set(named))
        host = direction == INGRESS and peer.labels.get("reserved", "host") is not None
        result = ALL_PORTS if host or not self.is_isolated(enforcer, direction) else _union(allowed)
        return result - _union(denied) if denied and result else result

    def connections(self, src: str | Subject, dst: str | Subject) -> PortSet:
        """Every (protocol, port) Cilium lets ``src`` open to ``dst``: egress at src AND ingress at dst."""
        src_s, dst_s = self.resolve(src), self.resolve(dst)
        key = (src_s.peer_key, dst_s.peer_key, tuple(dst_s.named_ports.items()))
        found = self._connections.get(key)
        if found is None:
            found = self._connections[key] = self.direction_ports(EGRESS, src_s, dst_s, dst_s) & \
                self.direction_ports(INGRESS, dst_s, src_s, dst_s)
        return found

    def endpoint_index(self) -> LabelIndex:
        """`endpoints()` by id in a LabelIndex: a selector over all of them at once (blast radius)."""
        if self._endpoint_index is None:
            self._endpoint_index = LabelIndex((s.id, s.labels) for s in self.endpoints())
        return self._endpoint_index

    def endpoints(self) -> list[Subject]:
        """One subject per workload (or bare pod) and identity, plus the reference entities."""
        if self._endpoints is None:
            self._endpoints = list(self.inventory.representatives()) + [entity_subject(e)
                                                                         for e in REFERENCE_ENTITIES]
        return self._endpoints

    def newly_allowed(self, limit: int | None = None) -> list:
        """On a what-if view: the pairs (by workload) and ports the change allows that the base denied."""
        from hubbletui.policy.blast import newly_allowed

        return newly_allowed(self, limit)

    def policy_objects(self, kind: str) -> list[dict]:
        """Raw objects of a policy kind as this engine (or view) sees them."""
        if kind in ISTIO_KINDS:
            return [self.istio_objects[kind][k] for k in sorted(self.istio_objects[kind])]
        return [p.obj for k, p in sorted(self.policies.items(), key=lambda kv: _policy_order(kv[0]))
                if k.kind == kind and p.obj is not None]


def _by_fqdn_only(rule: Rule, peer: Subject) -> bool:
    """Whether ``rule`` admits ``peer`` only through a toFQDNs name (then DNS answers decide)."""
    if rule.all_peers:
        return False
    matching = [p for p in rule.peers if p.matches(peer)]
    return bool(matching) and all(p.kind == "fqdn" for p in matching)


def _selection_entry(ingress: list[Rule], egress: list[Rule]) -> tuple:
    """(ingress, egress, the same without repeats): many policies often say the same thing (one per team,
    generated from a template); the connection sets need each distinct rule once."""
    return tuple(ingress), tuple(egress), _distinct(ingress), _distinct(egress)


def _distinct(rules: list[Rule]) -> tuple[Rule, ...]:
    seen: dict = {}
    for rule in rules:
        seen.setdefault(rule.signature, rule)
    return tuple(seen.values())


def _rule_order(rule: Rule) -> tuple:
    """The order `candidate_rules` lists rules in: pinned to a namespace first, then by policy, then in place."""
    return rule.subject.pinned_namespace() is None, _policy_order(rule.policy), rule.order


def _union(sets: list[PortSet]) -> PortSet:
    if len(sets) == 1:
        return sets[0]
    out = PortSet()
    for ports in sets:
        out = out | ports
    return out


def _policy_order(key: PolicyKey) -> tuple[int, str, str]:
    order = {"CiliumClusterwideNetworkPolicy": 0, "CiliumNetworkPolicy": 1, "NetworkPolicy": 2}
    return order.get(key.kind, 3), key.namespace, key.name


def _policy_refs(rules: Iterable[Rule]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rules:
        seen.setdefault(r.policy.ref, None)
    return list(seen)


def _hit(rule: Rule, l7: tuple[str, ...] = ()) -> Hit:
    return Hit(rule.policy.ref, rule.path, rule.action, rule.policy, rule.direction, tuple(l7))


def _port_text(port: int, proto: str) -> str:
    return f"{proto} type {port}" if proto.startswith("ICMP") else f"{port}/{proto}"


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _unique(*subjects: Subject) -> Iterator[Subject]:
    seen = set()
    for s in subjects:
        if id(s) not in seen:
            seen.add(id(s))
            yield s


def _identity_differs(subject: Subject, hubble: LabelSet) -> bool:
    mine = {k: v for k, v in subject.labels.full.items() if not k.startswith("k8s:io.cilium.k8s.policy.cluster")}
    theirs = {k: v for k, v in hubble.full.items() if not k.startswith("k8s:io.cilium.k8s.policy.cluster")}
    return mine != theirs


def _with_note(subject: Subject, note: str) -> Subject:
    return replace(subject, notes=subject.notes + (note,))
