"""ClusterState: the policy-relevant Kubernetes objects, kept as the plain dicts `kubectl -o json` prints.

Both readers (snapshot files and the live list+watch) feed the same store, and the policy layer builds
its graph from it. Objects stay in their API form (camelCase keys) so that a snapshot written by
`hubbletui snapshot` is exactly what `kubectl apply` or a later `--cluster DIR` reads.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Kind:
    """A Kubernetes kind hubbletui reads: its API group ("" for the core group), scope and resource plural.
    The one table of kinds; what reading them through the API takes (versions, list calls) builds on it."""

    name: str
    group: str
    namespaced: bool
    plural: str

    @property
    def kubectl_resource(self) -> str:
        """How a kubectl command names it: a core kind by its name, any other as plural.group, which no custom
        resource of the same name can shadow."""
        return f"{self.plural}.{self.group}" if self.group else self.name.lower()


# Order matters only for deterministic output.
KUBE_KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("Namespace", "", False, "namespaces"),
    Kind("Pod", "", True, "pods"),
    Kind("ServiceAccount", "", True, "serviceaccounts"),
    Kind("Service", "", True, "services"),
    Kind("EndpointSlice", "discovery.k8s.io", True, "endpointslices"),
    Kind("Node", "", False, "nodes"),
    Kind("Deployment", "apps", True, "deployments"),
    Kind("StatefulSet", "apps", True, "statefulsets"),
    Kind("DaemonSet", "apps", True, "daemonsets"),
    Kind("ReplicaSet", "apps", True, "replicasets"),
    Kind("ReplicationController", "", True, "replicationcontrollers"),
    Kind("Job", "batch", True, "jobs"),
    Kind("CronJob", "batch", True, "cronjobs"),
    Kind("NetworkPolicy", "networking.k8s.io", True, "networkpolicies"),
    Kind("CiliumNetworkPolicy", "cilium.io", True, "ciliumnetworkpolicies"),
    Kind("CiliumClusterwideNetworkPolicy", "cilium.io", False, "ciliumclusterwidenetworkpolicies"),
    Kind("CiliumCIDRGroup", "cilium.io", False, "ciliumcidrgroups"),
    Kind("AuthorizationPolicy", "security.istio.io", True, "authorizationpolicies"),
    Kind("PeerAuthentication", "security.istio.io", True, "peerauthentications"),
)}
# kind -> (API group, namespaced): the short view most readers want, made from the table above
KINDS: dict[str, tuple[str, bool]] = {name: (k.group, k.namespaced) for name, k in KUBE_KINDS.items()}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob")
POLICY_KINDS = ("NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy", "AuthorizationPolicy",
                "PeerAuthentication")

Key = tuple[str, str]  # (namespace, name); namespace is "" for cluster-scoped kinds


def object_key(obj: dict) -> Key:
    meta = obj.get("metadata") or {}
    kind = obj.get("kind", "")
    namespaced = KINDS.get(kind, ("", True))[1]
    return (meta.get("namespace") or "default") if namespaced else "", meta.get("name") or ""


@dataclass
class Change:
    """One change to the store: what a listener (the policy graph) needs to update incrementally."""

    action: str  # "upsert" | "delete"
    kind: str
    key: Key
    obj: dict | None


@dataclass
class ClusterState:
    """A thread-safe store of objects by kind; `generation` bumps on every change."""

    objects: dict[str, dict[Key, dict]] = field(default_factory=lambda: {k: {} for k in KINDS})
    generation: int = 0
    source: str = ""  # "snapshot DIR" or "live context X": shown to users
    warnings: list[str] = field(default_factory=list)  # what could not be read (a CRD missing, RBAC, a bad file)
    skipped_kinds: Counter = field(default_factory=Counter)  # unknown kinds met while loading
    # live mode sets this to end its watch threads; a snapshot has nothing to stop
    stop: Callable[[], None] = field(default=lambda: None, repr=False)
    _listeners: list[Callable[[Change], None]] = field(default_factory=list, repr=False)
    # called when a kind becomes readable or unreadable (live mode's retries): answers' completeness changes
    _readability_listeners: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def upsert(self, obj: dict) -> bool:
        """Store ``obj``; returns False (and counts it) when its kind is not one we model."""
        kind = obj.get("kind", "")
        if kind not in KINDS:
            self.skipped_kinds[kind or "<no kind>"] += 1
            return False
        key = object_key(obj)
        with self._lock:
            self.objects[kind][key] = obj
            self.generation += 1
            listeners = list(self._listeners)
        for listener in listeners:
            listener(Change("upsert", kind, key, obj))
        return True

    def delete(self, kind: str, key: Key) -> None:
        with self._lock:
            if self.objects.get(kind, {}).pop(key, None) is None:
                return
            self.generation += 1
            listeners = list(self._listeners)
        for listener in listeners:
            listener(Change("delete", kind, key, None))

    def replace_kind(self, kind: str, objs: list[dict], namespace: str | None = None) -> None:
        """Set the whole list of one kind (a relist after `410 Gone`), or only its objects in ``namespace``
        (a kind read namespace by namespace)."""
        with self._lock:
            current = self.objects[kind]
            old = set(current) if namespace is None else {k for k in current if k[0] == namespace}
            new = {object_key(o): o for o in objs}
            if namespace is None:
                self.objects[kind] = new
            else:
                self.objects[kind] = {**{k: o for k, o in current.items() if k not in old}, **new}
            self.generation += 1
            listeners = list(self._listeners)
        for listener in listeners:
            for key in old - set(new):
                listener(Change("delete", kind, key, None))
            for key, obj in new.items():
                listener(Change("upsert", kind, key, obj))

    def set_unreadable(self, kind: str, why: str | None) -> None:
        """Say why ``kind`` cannot be read now (a warning starting with "Kind:"), or with None that it can again."""
        with self._lock:
            kept = [w for w in self.warnings if w.partition(":")[0] != kind]
            new = kept + [why] if why is not None else kept
            if new == self.warnings:
                return
            self.warnings[:] = new
            listeners = list(self._readability_listeners)
        for listener in listeners:
            listener()

    def on_readability(self, listener: Callable[[], None]) -> Callable[[], None]:
        with self._lock:
            self._readability_listeners.append(listener)
        return lambda: self._readability_listeners.remove(listener)

    @property
    def lock(self) -> threading.RLock:
        """Held, no change lands: for reading several kinds as one moment (a bundle's starting state)."""
        return self._lock

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        return self.objects.get(kind, {}).get((namespace, name))

    def list(self, kind: str) -> list[dict]:
        with self._lock:
            return [self.objects[kind][k] for k in sorted(self.objects.get(kind, {}))]

    def __iter__(self) -> Iterator[dict]:
        for kind in KINDS:
            yield from self.list(kind)

    def subscribe(self, listener: Callable[[Change], None]) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def ensure_namespace(self, name: str) -> None:
        """A namespace referenced but absent gets the label the API server would have given it."""
        if name and ("", name) not in self.objects["Namespace"]:
            self.upsert({"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}}})

    def counts(self) -> dict[str, int]:
        return {kind: len(objs) for kind, objs in self.objects.items() if objs}
