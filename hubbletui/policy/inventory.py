"""Who is in the cluster: pods and pod-less workloads as Subjects, kept per namespace.

A pod is named by its owning workload (a ReplicaSet owned by a Deployment -> the Deployment, a Job owned by a
CronJob -> the CronJob). A workload with no pod in the state stands for its pods through its pod template.
Everything is grouped by namespace so that a change (a pod, a namespace's labels, a what-if template edit)
rebuilds one namespace, and a copy for a what-if view shares every untouched namespace.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from hubbletui.cluster.model import WORKLOAD_KINDS
from hubbletui.policy.labels import DEFAULT_CLUSTER, METADATA_NAME, pod_identity_labels
from hubbletui.policy.ports import L4_PROTOCOLS
from hubbletui.policy.subjects import Subject

SUBJECT_KINDS = ("Namespace", "Pod", "ServiceAccount", *WORKLOAD_KINDS)
_JOB_OF_CRONJOB = re.compile(r"^(.+)-\d+$")


def pod_template(kind: str, obj: dict) -> dict | None:
    spec = obj.get("spec") or {}
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    template = spec.get("template")
    return template if isinstance(template, dict) else None


def named_ports(pod_spec: dict) -> dict[str, tuple[tuple[int, str], ...]]:
    out: dict[str, list[tuple[int, str]]] = {}
    for container in (pod_spec.get("containers") or []) + (pod_spec.get("initContainers") or []):
        for port in (container or {}).get("ports") or []:
            name, number = (port or {}).get("name"), (port or {}).get("containerPort")
            protocol = str((port or {}).get("protocol") or "TCP").upper()
            if name and isinstance(number, int) and protocol in L4_PROTOCOLS:
                out.setdefault(str(name), []).append((number, protocol))
    return {k: tuple(v) for k, v in out.items()}


@dataclass
class NamespaceMembers:
    """The raw objects of one namespace and the subjects built from them."""

    name: str
    obj: dict | None = None
    raw: dict[str, dict[str, dict]] = field(default_factory=dict)  # kind -> name -> object
    pods: dict[str, Subject] = field(default_factory=dict)  # pod name -> subject
    templates: dict[tuple[str, str], Subject] = field(default_factory=dict)  # (kind, name) -> template subject
    members: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # workload -> its pod names
    rolled_out: set[tuple[str, str]] = field(default_factory=set)  # what-if: pods follow these templates
    reps: list[Subject] = field(default_factory=list)  # one subject per (workload or bare pod, identity)
    previous: tuple[dict | None, dict[str, Subject]] | None = None  # (namespace object, pods) before a change

    def labels(self) -> dict[str, str]:
        labels = dict(((self.obj or {}).get("metadata") or {}).get("labels") or {})
        labels.setdefault(METADATA_NAME, self.name)
        return labels

    def copy(self) -> NamespaceMembers:
        return NamespaceMembers(self.name, self.obj, {k: dict(v) for k, v in self.raw.items()},
                                rolled_out=set(self.rolled_out), previous=(self.obj, self.pods))


class Inventory:
    def __init__(self, cluster: str = DEFAULT_CLUSTER, host_network_as_pods: bool = False):
        self.cluster = cluster
        # NetworkPolicy tools (netpol-analyzer) treat a hostNetwork pod as a pod; Cilium does not
        self.host_network_as_pods = host_network_as_pods
        self.namespaces: dict[str, NamespaceMembers] = {}
        self._by_ip: dict[str, list[Subject]] | None = None

    @classmethod
    def from_objects(cls, objects: Iterable[tuple[str, dict]], cluster: str = DEFAULT_CLUSTER,
                     host_network_as_pods: bool = False) -> Inventory:
        inv = cls(cluster, host_network_as_pods)
        for kind, obj in objects:
            inv._store(kind, obj)
        for members in inv.namespaces.values():
            inv._build(members)
        return inv

    def copy(self) -> Inventory:
        """A view that shares every namespace until it is changed (see `upsert`)."""
        other = Inventory(self.cluster, self.host_network_as_pods)
        other.namespaces = dict(self.namespaces)
        return other

    # changes ------------------------------------------------------------------------------------
    def upsert(self, kind: str, obj: dict, rollout: bool = False) -> str:
        """Store one object and rebuild its namespace; returns the namespace rebuilt.

        ``rollout`` (what-if views): a workload's pods take its new pod template, as they would once its
        controller rolled them out; without it (live state) pods keep their own labels until replaced."""
        ns = self._namespace_of(kind, obj)
        self.namespaces[ns] = members = self._own(ns)
        self._put(members, kind, obj)
        if rollout and kind in WORKLOAD_KINDS:
            members.rolled_out.add((kind, (obj.get("metadata") or {}).get("name") or ""))
        self._build(members)
        return ns

    def delete(self, kind: str, namespace: str, name: str) -> str:
        ns = name if kind == "Namespace" else namespace
        if ns not in self.namespaces:
            return ns
        self.namespaces[ns] = members = self._own(ns)
        if kind == "Namespace":
            members.obj = None
        else:
            members.raw.get(kind, {}).pop(name, None)
        self._build(members)
        return ns

    def _own(self, ns: str) -> NamespaceMembers:
        current = self.namespaces.get(ns)
        return current.copy() if current is not None else NamespaceMembers(ns)

    def _store(self, kind: str, obj: dict) -> None:
        ns = self._namespace_of(kind, obj)
        members = self.namespaces.get(ns)
        if members is None:
            members = self.namespaces[ns] = NamespaceMembers(ns)
        self._put(members, kind, obj)

    @staticmethod
    def _namespace_of(kind: str, obj: dict) -> str:
        meta = obj.get("metadata") or {}
        return (meta.get("name") if kind == "Namespace" else meta.get("namespace")) or "default"

    @staticmethod
    def _put(members: NamespaceMembers, kind: str, obj: dict) -> None:
        if kind == "Namespace":
            members.obj = obj
        else:
            members.raw.setdefault(kind, {})[(obj.get("metadata") or {}).get("name") or ""] = obj

    # building -----------------------------------------------------------------------------------
    def _build(self, members: NamespaceMembers) -> None:
        self._by_ip = None
        ns_labels = members.labels()
        members.pods, members.templates, members.members = {}, {}, {}
        identities: dict = {}  # pods of one workload share their identity: build each once
        # a pod whose object, owner and namespace did not change keeps its subject (a change rebuilds the
        # namespace, but usually touches one workload of it)
        reusable = members.previous[1] if members.previous and members.previous[0] is members.obj else {}
        members.previous = None
        for name in sorted(members.raw.get("Pod", {})):
            pod = members.raw["Pod"][name]
            owner = self._owner(members, pod)
            old = reusable.get(name)
            if old is not None and old.obj is pod and old.workload == owner and owner not in members.rolled_out:
                members.pods[name] = old
                if owner:
                    members.members.setdefault(owner, []).append(name)
                continue
            labels, spec = (pod.get("metadata") or {}).get("labels"), pod.get("spec") or {}
            if owner in members.rolled_out:
                template = pod_template(owner[0], members.raw.get(owner[0], {}).get(owner[1]) or {}) or {}
                labels, spec = (template.get("metadata") or {}).get("labels"), template.get("spec") or {}
            status = pod.get("status") or {}
            ips = [status.get("podIP")] + [p.get("ip") for p in status.get("podIPs") or [] if isinstance(p, dict)]
            subject = self._subject(members.name, name, "pod", pod, spec, labels, ns_labels, owner, identities,
                                    ip=next((ip for ip in ips if ip), ""))
            if status.get("phase") in ("Succeeded", "Failed"):
                subject.notes += (f"the pod has phase {status['phase']}: it has no Cilium endpoint any more",)
            members.pods[name] = subject
            if owner:
                members.members.setdefault(owner, []).append(name)
        for kind in WORKLOAD_KINDS:
            for name in sorted(members.raw.get(kind, {})):
                obj = members.raw[kind][name]
                if (kind, name) in members.members or self._folded_into_owner(members, kind, obj):
                    continue
                template = pod_template(kind, obj)
                if template is None:
                    continue
                tmeta = template.get("metadata") or {}
                subject = self._subject(members.name, name, "workload", obj, template.get("spec") or {},
                                        tmeta.get("labels"), ns_labels, (kind, name), identities)
                members.templates[(kind, name)] = subject
        seen: set = set()
        members.reps = []
        for subject in members.pods.values():
            key = (subject.workload or ("Pod", subject.name), subject.labels.key)
            if key not in seen:
                seen.add(key)
                members.reps.append(subject)
        members.reps.extend(members.templates.values())

    def _subject(self, ns: str, name: str, kind: str, obj: dict, pod_spec: dict, labels: dict | None,
                 ns_labels: dict, owner: tuple[str, str] | None, identities: dict, ip: str = "") -> Subject:
        sa = pod_spec.get("serviceAccountName") or pod_spec.get("serviceAccount") or "default"
        memo = (tuple(sorted((str(k), str(v)) for k, v in (labels or {}).items())), sa)
        identity = identities.get(memo)
        if identity is None:
            identity = identities[memo] = pod_identity_labels(ns, labels, ns_labels, sa, self.cluster)
        host_network = bool(pod_spec.get("hostNetwork"))
        notes = ()
        if host_network and self.host_network_as_pods:
            host_network = False
            notes = ("a hostNetwork pod, evaluated as a pod (--host-network-pods pod), as NetworkPolicy tools do; "
                     "Cilium gives its traffic the host identity instead",)
        elif host_network:
            notes = ("a hostNetwork pod: it has no Cilium endpoint of its own; its traffic carries the host "
                     "identity (host on its node, remote-node elsewhere) and only host policies apply to it",)
        return Subject(id=f"{ns}/{name}", kind=kind, labels=identity, namespace=ns, name=name, workload=owner, ip=ip,
                       named_ports=named_ports(pod_spec), host_network=host_network, service_account=sa,
                       obj=obj, notes=notes, node=str(pod_spec.get("nodeName") or ""))

    @staticmethod
    def _owner(members: NamespaceMembers, pod: dict) -> tuple[str, str] | None:
        meta = pod.get("metadata") or {}
        refs = [r for r in meta.get("ownerReferences") or [] if isinstance(r, dict) and r.get("name")]
        if not refs:
            return None
        ref = next((r for r in refs if r.get("controller")), refs[0])
        kind, name = str(ref.get("kind") or ""), str(ref["name"])
        if kind == "ReplicaSet":
            rs = members.raw.get("ReplicaSet", {}).get(name)
            parent = _controller(rs) if rs else None
            if parent and parent[0] == "Deployment":
                return parent
            pod_hash = (meta.get("labels") or {}).get("pod-template-hash")
            if rs is None and pod_hash and name.endswith("-" + pod_hash):
                deployment = name[: -len(pod_hash) - 1]
                if deployment in members.raw.get("Deployment", {}):
                    return "Deployment", deployment
        elif kind == "Job":
            job = members.raw.get("Job", {}).get(name)
            parent = _controller(job) if job else None
            if parent and parent[0] == "CronJob":
                return parent
            m = _JOB_OF_CRONJOB.match(name)
            if job is None and m and m.group(1) in members.raw.get("CronJob", {}):
                return "CronJob", m.group(1)
        return kind, name

    @staticmethod
    def _folded_into_owner(members: NamespaceMembers, kind: str, obj: dict) -> bool:
        """A ReplicaSet of a Deployment (a Job of a CronJob) that is in the state is represented by it."""
        parent = _controller(obj)
        return bool(parent and parent[1] in members.raw.get(parent[0], {}))

    # queries ------------------------------------------------------------------------------------
    def pod(self, ns: str, name: str) -> Subject | None:
        members = self.namespaces.get(ns)
        return members.pods.get(name) if members else None

    def workload(self, ns: str, name: str, kind: str | None = None) -> Subject | None:
        """A workload's stand-in: its first pod in the state, else its template."""
        members = self.namespaces.get(ns)
        if not members:
            return None
        for k in ([kind] if kind else WORKLOAD_KINDS):
            if (k, name) in members.members:
                return members.pods[members.members[(k, name)][0]]
            if (k, name) in members.templates:
                return members.templates[(k, name)]
        # an owner whose kind is not a workload kind we know (or not given)
        for (k, n), pods in members.members.items():
            if n == name and (kind is None or k == kind):
                return members.pods[pods[0]]
        return None

    def by_ip(self, ip: str) -> list[Subject]:
        if self._by_ip is None:
            index: dict[str, list[Subject]] = {}
            for members in self.namespaces.values():
                for subject in members.pods.values():
                    if subject.ip:
                        index.setdefault(_canonical_ip(subject.ip), []).append(subject)
                    for extra in ((subject.obj or {}).get("status") or {}).get("podIPs") or []:
                        ip_text = (extra or {}).get("ip")
                        if ip_text and _canonical_ip(ip_text) != _canonical_ip(subject.ip):
                            index.setdefault(_canonical_ip(ip_text), []).append(subject)
            self._by_ip = index
        return self._by_ip.get(_canonical_ip(ip), [])

    def subjects(self) -> Iterator[Subject]:
        """Every pod and every pod-less workload template."""
        for ns in sorted(self.namespaces):
            members = self.namespaces[ns]
            yield from members.pods.values()
            yield from members.templates.values()

    def representatives(self) -> Iterator[Subject]:
        """One subject per (workload or bare pod, identity): what a graph or a blast radius reasons about."""
        for ns in sorted(self.namespaces):
            yield from self.namespaces[ns].reps

    def namespace_labels(self, ns: str) -> dict[str, str]:
        members = self.namespaces.get(ns)
        return members.labels() if members else {METADATA_NAME: ns}


def _controller(obj: dict | None) -> tuple[str, str] | None:
    refs = [r for r in ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
            if isinstance(r, dict) and r.get("name") and r.get("kind")]
    if not refs:
        return None
    ref = next((r for r in refs if r.get("controller")), refs[0])
    return str(ref["kind"]), str(ref["name"])


def _canonical_ip(ip: str) -> str:
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ip
