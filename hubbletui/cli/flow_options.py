"""Flags shared by the commands that read flows (observe, record, tui, suggest), named as `hubble observe` has
them so that fingers and scripts carry over."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import click

from hubbletui.errors import HubbleTuiError
from hubbletui.flows.filters import FilterError, compile_request
from hubbletui.flows.request import FilterSpec, FlowQuery, build_filters
from hubbletui.flows.timefmt import parse_time_arg
from hubbletui.sources import DEFAULT_SERVER

# hubble observe's filter flags: (flag, parameter name, help, short name); a help starting "[flag]" takes no value
_FILTER_FLAGS = [
    ("--not", "not_", "[flag] the next filter flag excludes instead of selecting (--not --pod web)", None),
    ("--verdict", "verdict", "FORWARDED, DROPPED, AUDIT, REDIRECTED, ERROR, TRACED, TRANSLATED", None),
    ("--namespace", "namespace", "either side in this namespace", "-n"),
    ("--all-namespaces", "all_namespaces", "[flag] either side in any namespace", "-A"),
    ("--from-all-namespaces", "from_all_namespaces", "[flag] the source in any namespace", None),
    ("--to-all-namespaces", "to_all_namespaces", "[flag] the destination in any namespace", None),
    ("--pod", "pod", "either side is this pod-name prefix ([ns/]name; no namespace: default)", None),
    ("--from-pod", "from_pod", "the source is this pod ([ns/]name)", None),
    ("--to-pod", "to_pod", "the destination is this pod ([ns/]name)", None),
    ("--from-namespace", "from_namespace", "the source is in this namespace", None),
    ("--to-namespace", "to_namespace", "the destination is in this namespace", None),
    ("--label", "label", "either side matches this label selector", "-l"),
    ("--from-label", "from_label", "the source matches this label selector", None),
    ("--to-label", "to_label", "the destination matches this label selector", None),
    ("--ip", "ip", "either side has this IP or is in this CIDR", None),
    ("--from-ip", "from_ip", "the source IP or CIDR", None),
    ("--to-ip", "to_ip", "the destination IP or CIDR", None),
    ("--snat-ip", "snat_ip", "SNATed to this IP or CIDR", None),
    ("--ip-version", "ip_version", "v4, v6 or none", None),
    ("--ipv4", "ipv4", "[flag] IPv4 flows only", "-4"),
    ("--ipv6", "ipv6", "[flag] IPv6 flows only", "-6"),
    ("--port", "port", "either side uses this L4 port", None),
    ("--from-port", "from_port", "the source L4 port", None),
    ("--to-port", "to_port", "the destination L4 port", None),
    ("--protocol", "protocol", "tcp, udp, sctp, icmp, icmpv4, icmpv6, http, dns, kafka", None),
    ("--tcp-flags", "tcp_flags", "all of these TCP flags (syn,ack; repeat for either)", None),
    ("--type", "type", "event type: drop, trace[:to-endpoint...], policy-verdict, l7, capture, trace-sock, agent, "
                       "or a number", "-t"),
    ("--traffic-direction", "traffic_direction", "ingress or egress", None),
    ("--drop-reason-desc", "drop_reason_desc", "drop reason name, e.g. POLICY_DENIED", None),
    ("--identity", "identity", "either side has this security identity (number or reserved name)", None),
    ("--from-identity", "from_identity", "the source's security identity", None),
    ("--to-identity", "to_identity", "the destination's security identity", None),
    ("--fqdn", "fqdn", "either side has this DNS name (glob: *.cilium.io)", None),
    ("--from-fqdn", "from_fqdn", "the source's DNS name", None),
    ("--to-fqdn", "to_fqdn", "the destination's DNS name", None),
    ("--service", "service", "either side is this service-name prefix ([ns/]name)", None),
    ("--from-service", "from_service", "the source service", None),
    ("--to-service", "to_service", "the destination service", None),
    ("--workload", "workload", "either side belongs to this workload ([kind/]name)", None),
    ("--from-workload", "from_workload", "the source workload", None),
    ("--to-workload", "to_workload", "the destination workload", None),
    ("--cluster", "cluster_names", "either side is in this cluster (glob)", None),
    ("--from-cluster", "from_cluster", "the source's cluster", None),
    ("--to-cluster", "to_cluster", "the destination's cluster", None),
    ("--node-name", "node_name", "node name or glob (cluster/node)", None),
    ("--node-label", "node_label", "the node matches this label selector", None),
    ("--http-status", "http_status", "HTTP status code or prefix (404, 5+)", None),
    ("--http-method", "http_method", "HTTP method", None),
    ("--http-path", "http_path", "HTTP path regular expression", None),
    ("--http-url", "http_url", "HTTP URL regular expression", None),
    ("--http-header", "http_header", "HTTP header name:value", None),
    ("--uuid", "uuid", "the flow with this identifier", None),
    ("--trace-id", "trace_id", "this trace id (trace context)", None),
    ("--ip-trace-id", "ip_trace_id", "this IP trace id", None),
    ("--interface", "interface", "observed at this network interface name", None),
    ("--encrypted", "encrypted", "[flag] encrypted flows only (WireGuard, IPsec)", None),
    ("--unencrypted", "unencrypted", "[flag] unencrypted flows only", None),
    ("--cel-expression", "cel_expression", "a CEL expression (refused: not supported here)", None),
    ("--allowlist", "allowlist", "a raw FlowFilter in JSON to allow (repeatable)", None),
    ("--denylist", "denylist", "a raw FlowFilter in JSON to deny (repeatable)", None),
]
_ORDER_KEY = "hubbletui.filter_order"
_ORDERED = {dest for _, dest, _, _ in _FILTER_FLAGS if dest not in ("allowlist", "denylist")}


class FilterOrderCommand(click.Command):
    """A command whose filter flags keep the order they were given in, as hubble's do (``--not`` applies to
    the flag after it). Click keeps each option's values in order but not how options interleave, so the
    arguments are read once more here, by click's own parser, before the usual parse."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            values, _, order = self.make_parser(ctx).parse_args(args=list(args))
        except click.UsageError:
            order = []  # the real parse below says what is wrong
        taken: dict[str, int] = {}
        sequence = []
        for param in order:
            if param.name in _ORDERED:
                i = taken[param.name] = taken.get(param.name, -1) + 1
                raw = values.get(param.name) or []
                sequence.append((param.name, "" if i >= len(raw) or raw[i] is True else str(raw[i])))
        ctx.meta[_ORDER_KEY] = tuple(sequence)
        return super().parse_args(ctx, args)


def filter_options(func: Callable | None = None, *, exclude: tuple[str, ...] = ()) -> Callable:
    """hubble observe's filter flags; a command declared with ``cls=FilterOrderCommand`` passes their order as
    ``order`` (FilterSpec.order). ``exclude``: flags the command uses for something else (--cluster)."""
    if func is None:
        return lambda f: filter_options(f, exclude=exclude)
    inner = func

    @functools.wraps(inner)
    def with_order(*args, **kwargs):
        kwargs["order"] = click.get_current_context().meta.get(_ORDER_KEY, ())
        return inner(*args, **kwargs)

    func = with_order
    for flag, dest, help_text, short in reversed(_FILTER_FLAGS):
        if flag in exclude:
            continue
        names = [flag, dest] + ([short] if short else [])
        if help_text.startswith("[flag] "):
            func = click.option(*names, is_flag=True, multiple=True, help=help_text[7:])(func)
        else:
            func = click.option(*names, multiple=True, help=help_text)(func)
    return func


def time_options(func: Callable) -> Callable:
    func = click.option("--until", help="only flows before this time (RFC 3339) or this long ago (5m)")(func)
    func = click.option("--since", help="only flows after this time (RFC 3339) or from this long ago (5m)")(func)
    return func


@dataclass(frozen=True)
class TimeFlags:
    since: str | None = None  # RFC 3339 or a duration ago ("5m")
    until: str | None = None


def build_query(filters: FilterSpec, times: TimeFlags, *, follow: bool = False, number: int | None = None,
                first: bool = False) -> FlowQuery:
    """The filter and time flags as a FlowQuery; bad values become one-line errors."""
    try:
        whitelist, blacklist = build_filters(filters)
        compile_request(whitelist, blacklist)  # reject what the client-side check could not evaluate
        return FlowQuery(whitelist=whitelist, blacklist=blacklist,
                         since_ns=parse_time_arg(times.since) if times.since else None,
                         until_ns=parse_time_arg(times.until) if times.until else None,
                         number=number, first=first, follow=follow)
    except (FilterError, ValueError) as exc:
        raise click.BadParameter(str(exc)) from None


def server_options(func: Callable) -> Callable:
    """--server and TLS flags exactly as the hubble CLI names them."""
    opts = [
        click.option("--server", envvar="HUBBLE_SERVER", default=None,
                     help=f"Hubble address: host:port, tls://host:port or unix:///path (default {DEFAULT_SERVER}, "
                          "env HUBBLE_SERVER)"),
        click.option("--tls", is_flag=True, help="use TLS (implied by a tls:// server address)"),
        click.option("--tls-allow-insecure", is_flag=True,
                     help="trust whatever certificate the server shows (fetched unverified, with a warning)"),
        click.option("--tls-ca-cert-files", multiple=True, type=click.Path(dir_okay=False),
                     help="PEM CA certificates to verify the server with (repeatable)"),
        click.option("--tls-client-cert-file", type=click.Path(dir_okay=False), help="client certificate (mTLS)"),
        click.option("--tls-client-key-file", type=click.Path(dir_okay=False), help="client key (mTLS)"),
        click.option("--tls-server-name", help="server name to verify, e.g. instance.hubble-relay.cilium.io"),
        click.option("--timeout", type=float, default=5.0, show_default=True, help="dial timeout in seconds"),
        click.option("--stall-timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
                     show_default=True,
                     help="without --follow: give up when the server sends nothing for this many seconds"),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


@dataclass(frozen=True)
class ServerFlags:
    """The flags of ``server_options`` beside --server itself."""

    tls: bool = False
    tls_allow_insecure: bool = False
    tls_ca_cert_files: tuple[str, ...] = ()
    tls_client_cert_file: str | None = None
    tls_client_key_file: str | None = None
    tls_server_name: str | None = None
    timeout: float = 5.0
    stall_timeout: float | None = None

    def dial_options(self, server: str | None):
        from hubbletui.sources.dial import DialOptions  # grpc only for commands that dial

        return DialOptions(server=server or DEFAULT_SERVER, tls=self.tls, ca_files=tuple(self.tls_ca_cert_files),
                           client_cert_file=self.tls_client_cert_file, client_key_file=self.tls_client_key_file,
                           server_name=self.tls_server_name, allow_insecure=self.tls_allow_insecure,
                           timeout=float(self.timeout or 5.0))


def use_color(choice: str, stream=None) -> bool:
    stream = stream or sys.stdout
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return stream.isatty()


def color_option(func: Callable) -> Callable:
    return click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto",
                        show_default=True, help="colour output (NO_COLOR is respected)")(func)


def require_one_source(input_file: str | None, server: str | None, what: str = "flows") -> None:
    if input_file and server:
        raise HubbleTuiError(f"read {what} from --input-file or --server, not both")
