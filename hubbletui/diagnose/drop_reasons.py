"""What each Hubble DropReason (flow.proto, Cilium v1.19.4) means, in plain words, and where to look next.

Names are the proto enum names exactly; the codes are the wire numbers Hubble sends in `drop_reason` and as
the event sub-type. Codes a newer Cilium may add are described as unknown, with their number.
"""

from __future__ import annotations

from dataclasses import dataclass

CATEGORIES = ("policy", "conntrack", "routing", "nat", "service", "encapsulation", "encryption", "proxy",
              "packet", "datapath", "endpoint", "rate-limit", "multicast", "other", "unknown")


@dataclass(frozen=True)
class DropReasonInfo:
    code: int | None  # None only for a name we do not know
    name: str
    category: str
    summary: str
    hint: str

    def to_dict(self) -> dict:
        return {"code": self.code, "name": self.name, "category": self.category, "summary": self.summary,
                "hint": self.hint}


_DEPRECATED = " (deprecated in v1.19: an older agent sent this)"

# code: (name, category, summary, hint)
_TABLE: dict[int, tuple[str, str, str, str]] = {
    0: ("DROP_REASON_UNKNOWN", "other",
        "The flow carries no drop reason.",
        "Look at the flow's verdict and event type; an older agent may not have filled the reason in."),
    130: ("INVALID_SOURCE_MAC", "packet",
          "The packet's source MAC address is not the one the endpoint was set up with.",
          "Check for MAC changes inside the pod or a misbehaving CNI chain" + _DEPRECATED + "."),
    131: ("INVALID_DESTINATION_MAC", "packet",
          "The packet's destination MAC address is not one Cilium expects on this interface.",
          "Check the pod's ARP/neighbour entries and any chained CNI plugin" + _DEPRECATED + "."),
    132: ("INVALID_SOURCE_IP", "packet",
          "The packet left a pod with a source IP address that does not belong to that pod.",
          "Look for IP spoofing, a stale pod IP after a restart, or an app binding another address; "
          "the endpoint's IP is in `cilium endpoint list`."),
    133: ("POLICY_DENIED", "policy",
          "No allow rule admits this flow and the endpoint is in default deny for this direction.",
          "Find the policies that select the dropping side (see the traffic direction) and the rule that comes "
          "nearest to admitting the peer; `hubbletui trace` names them."),
    134: ("INVALID_PACKET_DROPPED", "packet",
          "The packet's headers are malformed or too short to parse.",
          "Capture the traffic at the sender; a broken client, a middlebox or MTU trouble is the usual cause."),
    135: ("CT_TRUNCATED_OR_INVALID_HEADER", "conntrack",
          "Connection tracking could not read the packet's layer-4 header (truncated or invalid).",
          "Look for fragmented or corrupted packets and MTU mismatches on the path."),
    136: ("CT_MISSING_TCP_ACK_FLAG", "conntrack",
          "A TCP packet arrived for a connection that connection tracking does not know, and it was not a "
          "connection-opening SYN.",
          "Usually a connection that outlived its conntrack entry (agent restart, entry expired) or asymmetric "
          "routing; the client should reconnect."),
    137: ("CT_UNKNOWN_L4_PROTOCOL", "conntrack",
          "Connection tracking does not handle this layer-4 protocol.",
          "Check which IP protocol the flow uses; Cilium tracks TCP, UDP, SCTP and ICMP."),
    138: ("CT_CANNOT_CREATE_ENTRY_FROM_PACKET", "conntrack",
          "Connection tracking refused to create an entry from this packet.",
          "Check conntrack map pressure on the node" + _DEPRECATED + "."),
    139: ("UNSUPPORTED_L3_PROTOCOL", "packet",
          "The packet is neither IPv4 nor IPv6, or uses an IP family disabled in Cilium.",
          "Check whether IPv6 (or IPv4) is enabled in the Cilium config for the traffic you expect."),
    140: ("MISSED_TAIL_CALL", "datapath",
          "A BPF program tried to jump to another that was not loaded, so the packet was lost.",
          "Usually brief, during an agent restart or upgrade; if it persists, check the agent log for BPF load "
          "errors."),
    141: ("ERROR_WRITING_TO_PACKET", "datapath",
          "The datapath failed to rewrite the packet (for NAT, encapsulation or a header change).",
          "Look for kernel or agent errors on the node; report it to Cilium if it repeats."),
    142: ("UNKNOWN_L4_PROTOCOL", "packet",
          "The datapath does not know the packet's layer-4 protocol.",
          "Check the IP protocol number of the flow; policy with ports cannot match unknown protocols."),
    143: ("UNKNOWN_ICMPV4_CODE", "packet",
          "The ICMPv4 message has a code the datapath does not handle.",
          "Usually harmless; check which ICMP messages the application relies on."),
    144: ("UNKNOWN_ICMPV4_TYPE", "packet",
          "The ICMPv4 message has a type the datapath does not handle.",
          "Usually harmless; check which ICMP messages the application relies on."),
    145: ("UNKNOWN_ICMPV6_CODE", "packet",
          "The ICMPv6 message has a code the datapath does not handle.",
          "Usually harmless; check which ICMPv6 messages the application relies on."),
    146: ("UNKNOWN_ICMPV6_TYPE", "packet",
          "The ICMPv6 message has a type the datapath does not handle.",
          "Usually harmless; check which ICMPv6 messages the application relies on."),
    147: ("ERROR_RETRIEVING_TUNNEL_KEY", "encapsulation",
          "The datapath could not read the tunnel metadata of an encapsulated packet.",
          "Check the tunnel device (VXLAN/Geneve) on the node and the agent log."),
    148: ("ERROR_RETRIEVING_TUNNEL_OPTIONS", "encapsulation",
          "The datapath could not read the tunnel options of an encapsulated packet.",
          "Check the Geneve tunnel setup" + _DEPRECATED + "."),
    149: ("INVALID_GENEVE_OPTION", "encapsulation",
          "A Geneve-encapsulated packet carried an option Cilium does not accept.",
          "Check what else sends Geneve traffic to the node" + _DEPRECATED + "."),
    150: ("UNKNOWN_L3_TARGET_ADDRESS", "routing",
          "The packet is addressed to an IP the datapath cannot place on this node.",
          "Check that the destination pod still exists and that the node's routes and ipcache are current."),
    151: ("STALE_OR_UNROUTABLE_IP", "routing",
          "The packet uses an address Cilium no longer knows (a deleted pod's IP) or one it cannot route.",
          "Look for clients holding on to an old pod IP (DNS caching, long-lived connections) or an endpoint "
          "that was removed."),
    152: ("NO_MATCHING_LOCAL_CONTAINER_FOUND", "routing",
          "The packet was meant for a local pod but no endpoint on this node has that address.",
          "Check whether the pod was just deleted or moved" + _DEPRECATED + "."),
    153: ("ERROR_WHILE_CORRECTING_L3_CHECKSUM", "datapath",
          "The datapath failed to fix up the IP checksum after rewriting the packet.",
          "Look for kernel errors on the node; report it to Cilium if it repeats."),
    154: ("ERROR_WHILE_CORRECTING_L4_CHECKSUM", "datapath",
          "The datapath failed to fix up the TCP/UDP checksum after rewriting the packet.",
          "Look for kernel errors or checksum offload problems on the node's NIC."),
    155: ("CT_MAP_INSERTION_FAILED", "conntrack",
          "The connection tracking table had no room for a new connection.",
          "The conntrack map is full: check `cilium bpf ct list global | wc -l` against "
          "bpf-ct-global-tcp-max/any-max, and look for connection floods."),
    156: ("INVALID_IPV6_EXTENSION_HEADER", "packet",
          "The IPv6 packet has an extension header Cilium cannot parse.",
          "Capture the traffic at the sender to see which extension header it uses."),
    157: ("IP_FRAGMENTATION_NOT_SUPPORTED", "packet",
          "The packet is an IP fragment and fragment handling is not available for it.",
          "Lower the sender's packet size or MTU, or enable fragment tracking in Cilium."),
    158: ("SERVICE_BACKEND_NOT_FOUND", "service",
          "The flow went to a Service address, but the Service has no backend to send it to.",
          "Check that the Service's selector matches ready pods; its EndpointSlices list the backends."),
    160: ("NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT", "encapsulation",
          "The destination lives on another node, but no tunnel endpoint is known for it.",
          "Check that the remote node is known to Cilium (`cilium node list`) and that its pod CIDR is "
          "routed; often brief while a node joins."),
    161: ("FAILED_TO_INSERT_INTO_PROXYMAP", "proxy",
          "The datapath could not record the connection it redirects to the L7 proxy.",
          "The proxy map may be full; look at L7 policy load on the node and the agent log."),
    162: ("REACHED_EDT_RATE_LIMITING_DROP_HORIZON", "rate-limit",
          "The pod sent faster than its egress bandwidth limit allows and the excess was dropped.",
          "Check the pod's kubernetes.io/egress-bandwidth annotation (Cilium's bandwidth manager)."),
    163: ("UNKNOWN_CONNECTION_TRACKING_STATE", "conntrack",
          "Connection tracking returned a state the datapath does not expect.",
          "Look at the agent log; report it to Cilium if it repeats."),
    164: ("LOCAL_HOST_IS_UNREACHABLE", "routing",
          "The packet was meant for the node itself, and the node could not be reached.",
          "Check the host's networking and any host firewall policy (CiliumClusterwideNetworkPolicy with "
          "nodeSelector)."),
    165: ("NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION", "policy",
          "The endpoint has no policy loaded yet, so the datapath could not decide and dropped the packet.",
          "Usually brief while a pod starts or its policy is recomputed; if it lasts, check "
          "`cilium endpoint list` for endpoints not ready and the agent log."),
    166: ("UNSUPPORTED_L2_PROTOCOL", "packet",
          "The frame's layer-2 protocol is not one Cilium forwards.",
          "Check what sends non-IP frames on the pod's interface."),
    167: ("NO_MAPPING_FOR_NAT_MASQUERADE", "nat",
          "A reply reached the node but no masquerade (SNAT) entry says where it belongs.",
          "The SNAT entry may have expired or been evicted; look at NAT map pressure and long idle connections."),
    168: ("UNSUPPORTED_PROTOCOL_FOR_NAT_MASQUERADE", "nat",
          "Masquerading was needed but the packet's protocol cannot be masqueraded.",
          "Check the flow's protocol; BPF masquerading handles TCP, UDP and ICMP."),
    169: ("FIB_LOOKUP_FAILED", "routing",
          "The kernel's routing table had no route (or no neighbour entry) for the destination.",
          "Check the node's routes (`ip route get <dst>`) and neighbour table for the destination."),
    170: ("ENCAPSULATION_TRAFFIC_IS_PROHIBITED", "encapsulation",
          "An encapsulated packet arrived where Cilium does not accept tunnel traffic.",
          "Check which node or workload sends VXLAN/Geneve traffic here and the tunnel settings."),
    171: ("INVALID_IDENTITY", "datapath",
          "The packet carries a security identity Cilium does not consider valid.",
          "Look for identity allocation problems in the agent log or mismatched cluster IDs in a cluster mesh."),
    172: ("UNKNOWN_SENDER", "routing",
          "The packet came from a sender Cilium does not know (not a node or endpoint it manages).",
          "Check that the sending node is part of the cluster (`cilium node list`)."),
    173: ("NAT_NOT_NEEDED", "nat",
          "The datapath found no NAT was needed; reported as a drop by the NAT code path.",
          "Normally internal and harmless; look further only if connections fail alongside it."),
    174: ("IS_A_CLUSTERIP", "service",
          "The packet went to a Service's ClusterIP in a way Cilium does not serve (a port the Service does not "
          "expose, or from outside the cluster).",
          "Check the Service's ports and that clients reach ClusterIPs only from inside the cluster."),
    175: ("FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND", "packet",
          "A later IP fragment arrived without the first fragment that carries the ports.",
          "Lower the sender's packet size or MTU; fragments may be reordered or lost on the path."),
    176: ("FORBIDDEN_ICMPV6_MESSAGE", "packet",
          "The ICMPv6 message type is not allowed through.",
          "Check which ICMPv6 messages the application relies on."),
    177: ("DENIED_BY_LB_SRC_RANGE_CHECK", "policy",
          "The client's address is outside the Service's allowed load-balancer source ranges.",
          "Check the Service's spec.loadBalancerSourceRanges against the client IP."),
    178: ("SOCKET_LOOKUP_FAILED", "proxy",
          "The datapath could not find the proxy's socket to hand the connection to.",
          "Check that the L7 proxy (Envoy) on the node is running and listening."),
    179: ("SOCKET_ASSIGN_FAILED", "proxy",
          "The datapath found the proxy's socket but could not hand the connection to it.",
          "Check the L7 proxy on the node and the agent log."),
    180: ("PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL", "proxy",
          "An L7 rule asks to send this traffic through the proxy, but the proxy cannot carry this protocol.",
          "Check the L7 rules (toPorts.rules) that select this port and protocol."),
    181: ("POLICY_DENY", "policy",
          "An explicit deny rule matches this flow.",
          "Look at the ingressDeny/egressDeny rules selecting the dropping side; the flow's *_denied_by "
          "field often names the policy."),
    182: ("VLAN_FILTERED", "packet",
          "The packet carried a VLAN tag that is not allowed through.",
          "Check the VLAN IDs Cilium lets through (vlan-bpf-bypass)."),
    183: ("INVALID_VNI", "encapsulation",
          "The tunnel packet carried a virtual network ID that Cilium does not accept.",
          "Check what sends VXLAN/Geneve traffic with this VNI, and cluster mesh settings."),
    184: ("INVALID_TC_BUFFER", "datapath",
          "The packet buffer the datapath received was not in a usable state.",
          "Look at the agent and kernel logs; report it to Cilium if it repeats."),
    185: ("NO_SID", "routing",
          "No SRv6 segment ID was found for the packet's destination.",
          "Check the SRv6 configuration (segment routing policies and locators)."),
    186: ("MISSING_SRV6_STATE", "routing",
          "SRv6 state needed to forward the packet was missing.",
          "Check the SRv6 configuration" + _DEPRECATED + "."),
    187: ("NAT46", "nat",
          "Translating the packet from IPv4 to IPv6 failed.",
          "Check the NAT46/64 gateway setup and the addresses involved."),
    188: ("NAT64", "nat",
          "Translating the packet from IPv6 to IPv4 failed.",
          "Check the NAT46/64 gateway setup and the addresses involved."),
    189: ("AUTH_REQUIRED", "policy",
          "A policy rule requires mutual authentication between these peers and it has not happened (yet).",
          "Look at rules with authentication.mode: required and at the mutual-auth setup (SPIRE); the first "
          "packets of a new peer pair are dropped until the handshake completes."),
    190: ("CT_NO_MAP_FOUND", "conntrack",
          "The connection tracking map for this packet (per cluster in a cluster mesh) does not exist.",
          "Check cluster mesh configuration and cluster IDs; look at the agent log."),
    191: ("SNAT_NO_MAP_FOUND", "nat",
          "The masquerade (SNAT) map for this packet (per cluster in a cluster mesh) does not exist.",
          "Check cluster mesh configuration and cluster IDs; look at the agent log."),
    192: ("INVALID_CLUSTER_ID", "routing",
          "The packet carries a cluster ID Cilium does not accept.",
          "Check that every cluster in the mesh has a unique, configured cluster ID."),
    193: ("UNSUPPORTED_PROTOCOL_FOR_DSR_ENCAP", "service",
          "Direct server return with encapsulation does not support this protocol.",
          "Check the load-balancer DSR mode settings for the Service's protocol."),
    194: ("NO_EGRESS_GATEWAY", "routing",
          "An egress gateway policy selected the packet but no gateway node is available for it.",
          "Check the CiliumEgressGatewayPolicy's node selector and that a matching gateway node is ready."),
    195: ("UNENCRYPTED_TRAFFIC", "encryption",
          "Transparent encryption is in strict mode and this pod-to-pod packet was not encrypted.",
          "Check the WireGuard/IPsec status of both nodes (`cilium encrypt status`) and strict-mode settings."),
    196: ("TTL_EXCEEDED", "routing",
          "The packet's time to live (hop limit) ran out.",
          "Look for a routing loop or a sender using a very small TTL."),
    197: ("NO_NODE_ID", "routing",
          "Cilium has no node ID for the destination node, which it needs to forward this packet.",
          "Often brief while nodes join; check `cilium node list` and the encryption (IPsec) setup."),
    198: ("DROP_RATE_LIMITED", "rate-limit",
          "A rate limit in the datapath dropped the packet.",
          "Look for a burst from this source and the rate limits configured in Cilium."),
    199: ("IGMP_HANDLED", "multicast",
          "The datapath consumed an IGMP message itself; nothing was lost.",
          "Nothing to fix; it is reported as a drop only because the packet went no further."),
    200: ("IGMP_SUBSCRIBED", "multicast",
          "The datapath handled an IGMP join and subscribed the pod to the group; nothing was lost.",
          "Nothing to fix; it is reported as a drop only because the packet went no further."),
    201: ("MULTICAST_HANDLED", "multicast",
          "The datapath delivered the multicast packet to its subscribers itself; nothing was lost.",
          "Nothing to fix; it is reported as a drop only because the original packet went no further."),
    202: ("DROP_HOST_NOT_READY", "endpoint",
          "The node's own endpoint was not ready to handle traffic yet.",
          "Usually brief after the agent starts; if it lasts, check the agent's health and log."),
    203: ("DROP_EP_NOT_READY", "endpoint",
          "The destination endpoint was not ready to handle traffic yet.",
          "Usually brief while a pod starts; if it lasts, check `cilium endpoint list` for the pod's state."),
    204: ("DROP_NO_EGRESS_IP", "routing",
          "An egress gateway was chosen but it has no egress IP to send the packet from.",
          "Check the CiliumEgressGatewayPolicy's egressIP or interface on the gateway node."),
    205: ("DROP_PUNT_PROXY", "proxy",
          "The datapath handed the packet to a proxy instead of forwarding it itself.",
          "Look at what the proxy did with the connection (its access log) rather than at the datapath."),
}

POLICY_CODES = frozenset(code for code, row in _TABLE.items() if row[1] == "policy")
_BY_NAME = {row[0]: code for code, row in _TABLE.items()}


def _code(code_or_name: int | str) -> int | None:
    if isinstance(code_or_name, bool):
        return None
    if isinstance(code_or_name, int):
        return code_or_name
    text = str(code_or_name).strip()
    if text.isdigit():
        return int(text)
    return _BY_NAME.get(text.upper())


def describe(code_or_name: int | str) -> DropReasonInfo:
    """The meaning of a drop reason given as its number (133, "133") or its proto name ("POLICY_DENIED")."""
    code = _code(code_or_name)
    if code in _TABLE:
        name, category, summary, hint = _TABLE[code]
        return DropReasonInfo(code, name, category, summary, hint)
    if code is not None:
        return DropReasonInfo(code, f"UNKNOWN_{code}", "unknown",
                              f"Drop reason {code} is not one Cilium v1.19.4 defines.",
                              "A newer Cilium may have added it; look it up in that version's flow.proto.")
    return DropReasonInfo(None, str(code_or_name), "unknown",
                          f"Drop reason {code_or_name!r} is not one Cilium v1.19.4 defines.",
                          "Check the spelling against flow.proto's DropReason names.")


def is_policy(code_or_name: int | str) -> bool:
    """Whether a policy decision (not a datapath fault) dropped the flow."""
    return _code(code_or_name) in POLICY_CODES


def all_reasons() -> list[DropReasonInfo]:
    """Every known drop reason, by code."""
    return [describe(code) for code in sorted(_TABLE)]
