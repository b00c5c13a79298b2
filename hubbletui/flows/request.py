"""From what a person asks for (observe/record/tui flags) to Hubble's GetFlowsRequest filters.

Mirrors `hubble observe` exactly (see hubble_flags.py): the flags, in the order given, build the same
FlowFilters the hubble CLI sends, ``--not`` included. A FilterSpec built in code (no order recorded) takes
its fields in the order declared here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from hubbletui.flows.hubble_flags import build_from_flags
from hubbletui.proto.flow import flow_pb2


@dataclass
class FilterSpec:
    verdict: tuple[str, ...] = ()
    namespace: tuple[str, ...] = ()
    pod: tuple[str, ...] = ()
    from_pod: tuple[str, ...] = ()
    to_pod: tuple[str, ...] = ()
    from_namespace: tuple[str, ...] = ()
    to_namespace: tuple[str, ...] = ()
    all_namespaces: tuple[bool, ...] = ()  # value-less flags: one entry per time given
    from_all_namespaces: tuple[bool, ...] = ()
    to_all_namespaces: tuple[bool, ...] = ()
    label: tuple[str, ...] = ()
    from_label: tuple[str, ...] = ()
    to_label: tuple[str, ...] = ()
    ip: tuple[str, ...] = ()
    from_ip: tuple[str, ...] = ()
    to_ip: tuple[str, ...] = ()
    snat_ip: tuple[str, ...] = ()
    ip_version: tuple[str, ...] = ()
    ipv4: tuple[bool, ...] = ()
    ipv6: tuple[bool, ...] = ()
    port: tuple[str, ...] = ()
    from_port: tuple[str, ...] = ()
    to_port: tuple[str, ...] = ()
    protocol: tuple[str, ...] = ()
    tcp_flags: tuple[str, ...] = ()
    type: tuple[str, ...] = ()
    traffic_direction: tuple[str, ...] = ()
    drop_reason_desc: tuple[str, ...] = ()
    identity: tuple[str, ...] = ()
    from_identity: tuple[str, ...] = ()
    to_identity: tuple[str, ...] = ()
    fqdn: tuple[str, ...] = ()
    from_fqdn: tuple[str, ...] = ()
    to_fqdn: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    from_service: tuple[str, ...] = ()
    to_service: tuple[str, ...] = ()
    workload: tuple[str, ...] = ()
    from_workload: tuple[str, ...] = ()
    to_workload: tuple[str, ...] = ()
    cluster_names: tuple[str, ...] = ()  # hubble's --cluster (a name glob), not our --cluster snapshot path
    from_cluster: tuple[str, ...] = ()
    to_cluster: tuple[str, ...] = ()
    node_name: tuple[str, ...] = ()
    node_label: tuple[str, ...] = ()
    http_status: tuple[str, ...] = ()
    http_method: tuple[str, ...] = ()
    http_path: tuple[str, ...] = ()
    http_url: tuple[str, ...] = ()
    http_header: tuple[str, ...] = ()
    uuid: tuple[str, ...] = ()
    trace_id: tuple[str, ...] = ()
    ip_trace_id: tuple[str, ...] = ()
    interface: tuple[str, ...] = ()
    encrypted: tuple[bool, ...] = ()
    unencrypted: tuple[bool, ...] = ()
    cel_expression: tuple[str, ...] = ()
    not_: tuple[bool, ...] = ()  # only meaningful with ``order``: it negates the flag after it
    allowlist: tuple[str, ...] = ()  # raw FlowFilter JSON, as `hubble observe --allowlist`
    denylist: tuple[str, ...] = ()
    # the filter flags as given, (field name, value) in command-line order; () when built in code
    order: tuple[tuple[str, str], ...] = ()
    extra: dict = field(default_factory=dict)

    def flags(self) -> list[tuple[str, str]]:
        """The filter flags in the order they apply, as (hubble flag name, value)."""
        if self.order:
            pairs = list(self.order)
        else:
            if self.not_:
                raise ValueError("--not needs the order of the flags (a FilterSpec from the command line)")
            pairs = [(f.name, value) for f in fields(self) if f.name not in _NOT_FLAGS
                     for value in getattr(self, f.name)]
        return [(_RENAMED.get(name, name), "" if type(value) is bool else value) for name, value in pairs]


_NOT_FLAGS = {"allowlist", "denylist", "order", "extra"}
_RENAMED = {"cluster_names": "cluster"}


def build_filters(spec: FilterSpec) -> tuple[list[flow_pb2.FlowFilter], list[flow_pb2.FlowFilter]]:
    """(whitelist, blacklist) for a GetFlowsRequest; raises FilterError on a value that makes no sense."""
    return build_from_flags(spec.flags(), spec.allowlist, spec.denylist)


@dataclass
class FlowQuery:
    """What to ask a flow source for: the GetFlowsRequest fields, independent of where flows come from."""

    whitelist: list = field(default_factory=list)
    blacklist: list = field(default_factory=list)
    since_ns: int | None = None
    until_ns: int | None = None
    number: int | None = None  # None: no count limit
    first: bool = False
    follow: bool = False
    field_mask: tuple[str, ...] = ()
