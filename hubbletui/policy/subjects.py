"""Subjects: the things a rule selects or admits. A pod, a workload standing for its pods through its template,
a reserved entity (world, host, ...), or an IP outside the cluster, each with its identity labels."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from hubbletui.flows.labels import LabelSet, NAMESPACE_LABEL
from hubbletui.policy.labels import reserved_labels
from hubbletui.policy.ports import NamedPorts

# entity name -> reserved identity labels (pkg/policy/api/entity.go; numeric identities from Hubble)
RESERVED_IDENTITIES = {
    "host": 1, "world": 2, "unmanaged": 3, "health": 4, "init": 5, "remote-node": 6, "kube-apiserver": 7,
    "ingress": 8, "world-ipv4": 9, "world-ipv6": 10,
}
IDENTITY_NAMES = {number: name for name, number in RESERVED_IDENTITIES.items()}
WORLD_NAMES = ("world", "world-ipv4", "world-ipv6")


@dataclass(eq=False)
class Subject:
    """One endpoint as policy sees it. ``kind`` is pod | workload | entity | ip | flow (made from Hubble's labels)."""

    id: str  # how people name it: "ns/pod", "ns/workload", "world", "203.0.113.7"
    kind: str
    labels: LabelSet
    namespace: str = ""
    name: str = ""
    workload: tuple[str, str] | None = None  # (kind, name) of the owning workload
    ip: str = ""
    named_ports: NamedPorts = field(default_factory=dict)
    host_network: bool = False  # a hostNetwork pod, or a node: traffic carries the host's identity
    node: str = ""  # the node it runs on (a pod's spec.nodeName, a node's own name)
    service_account: str = ""
    dns_names: tuple[str, ...] = ()
    obj: dict | None = field(default=None, repr=False)  # the Pod, or the workload whose template stands in
    notes: tuple[str, ...] = ()
    cache: dict = field(default_factory=dict, repr=False)  # answers that depend on this subject alone
    # derived from the labels once (they are asked on every rule check):
    is_endpoint: bool = field(init=False)  # Cilium enforces policy only on its own endpoints: pods
    is_world: bool = field(init=False)
    cidr_matchable: bool = field(init=False)  # CIDR rules select only peers without an identity of their own
    peer_key: object = field(init=False, repr=False)  # what a rule's answer for this peer depends on

    def __post_init__(self) -> None:
        # set once: a Subject is not changed after it is made (dataclasses.replace makes a new one)
        # a hostNetwork pod has no endpoint of its own: it is the host endpoint (see PolicyEngine.host_view)
        self.is_endpoint = self.labels.get("k8s", NAMESPACE_LABEL) is not None and not self.host_network
        self.is_world = any(self.labels.get("reserved", w) is not None for w in WORLD_NAMES)
        self.cidr_matchable = self.is_world and not self.is_endpoint
        # a pod's address never matters (CIDR rules do not match pods); world's address and names do
        self.peer_key = (self.labels.key, self.ip, self.dns_names) if self.cidr_matchable or self.dns_names \
            else self.labels.key

    @property
    def workload_ref(self) -> str:
        """ns/workload for pods of a workload, ns/pod for bare pods, the id otherwise."""
        if self.workload:
            return f"{self.namespace}/{self.workload[1]}"
        return self.id

    @property
    def identity_name(self) -> str:
        reserved = self.labels.reserved()
        return min(reserved, key=len) if reserved else ""

    def summary(self) -> dict:
        out = {"ref": self.id, "kind": self.kind}
        if self.namespace:
            out["namespace"] = self.namespace
        if self.name:
            out["name"] = self.name
        if self.workload:
            out["workload"] = {"kind": self.workload[0], "name": self.workload[1]}
        if self.ip:
            out["ip"] = self.ip
        if self.service_account:
            out["service_account"] = self.service_account
        if self.dns_names:
            out["dns_names"] = list(self.dns_names)
        out["labels"] = self.labels.hubble_form()
        return out


# extra reserved labels an identity carries besides its own name (pkg/identity/numericidentity.go
# reservedIdentityLabels: ReservedIdentityKubeAPIServer has reserved:kube-apiserver and reserved:remote-node)
EXTRA_RESERVED = {"kube-apiserver": ("remote-node",)}


def entity_subject(name: str) -> Subject:
    labels = reserved_labels(name, *EXTRA_RESERVED.get(name, ()))
    return Subject(id=name, kind="entity", labels=labels)


def node_subject(name: str, ip: str = "", node_labels: dict[str, str] | None = None, relative: str = "remote-node",
                 notes: tuple[str, ...] = ()) -> Subject:
    """A node as a peer sees it: `host` from its own pods, `remote-node` from the others. Node labels are kept
    (as k8s: labels) for host policies' nodeSelector; they are not part of the remote-node identity."""
    labels = {f"reserved:{relative}": ""}
    if relative == "host":
        labels.update({f"k8s:{k}": str(v) for k, v in (node_labels or {}).items()})
    return Subject(id=f"node/{name}" if name else (ip or relative), kind="node", labels=LabelSet(labels), name=name,
                   ip=ip, host_network=True, node=name, notes=notes)


def ip_subject(ip: str, dns_names: tuple[str, ...] = ()) -> Subject:
    """An address that belongs to no pod we know: world, as Cilium sees it."""
    addr = ipaddress.ip_address(ip)
    family = "world-ipv4" if addr.version == 4 else "world-ipv6"
    return Subject(id=str(addr), kind="ip", labels=reserved_labels("world", family), ip=str(addr),
                   dns_names=dns_names)
