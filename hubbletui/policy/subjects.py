"""Subjects: the things a rule selects or admits. A pod, a workload standing for its pods through its template,
a reserved entity (world, host, ...), or an IP outside the cluster, each with its identity labels."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from hubbletui.policy.labels import NAMESPACE_LABEL, LabelSet, reserved_labels
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
    host_network: bool = False
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
        self.is_endpoint = self.labels.get("k8s", NAMESPACE_LABEL) is not None
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


def entity_subject(name: str) -> Subject:
    labels = reserved_labels(name)
    return Subject(id=name, kind="entity", labels=labels)


def ip_subject(ip: str, dns_names: tuple[str, ...] = ()) -> Subject:
    """An address that belongs to no pod we know: world, as Cilium sees it."""
    addr = ipaddress.ip_address(ip)
    family = "world-ipv4" if addr.version == 4 else "world-ipv6"
    return Subject(id=str(addr), kind="ip", labels=reserved_labels("world", family), ip=str(addr),
                   dns_names=dns_names)
