"""Flags shared by the commands that read flows (observe, record, tui, suggest), named as `hubble observe` has
them so that fingers and scripts carry over."""

from __future__ import annotations

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

_FILTER_FLAGS = [
    ("--verdict", "verdict", "FORWARDED, DROPPED, AUDIT, REDIRECTED, ERROR, TRACED, TRANSLATED"),
    ("--namespace", "namespace", "either side in this namespace (-n)"),
    ("--pod", "pod", "either side is this pod or pod-name prefix ([ns/]name)"),
    ("--from-pod", "from_pod", "the source is this pod ([ns/]name)"),
    ("--to-pod", "to_pod", "the destination is this pod ([ns/]name)"),
    ("--from-namespace", "from_namespace", "the source is in this namespace"),
    ("--to-namespace", "to_namespace", "the destination is in this namespace"),
    ("--label", "label", "either side matches this label selector (-l)"),
    ("--from-label", "from_label", "the source matches this label selector"),
    ("--to-label", "to_label", "the destination matches this label selector"),
    ("--ip", "ip", "either side has this IP or is in this CIDR"),
    ("--from-ip", "from_ip", "the source IP or CIDR"),
    ("--to-ip", "to_ip", "the destination IP or CIDR"),
    ("--port", "port", "either side uses this L4 port"),
    ("--from-port", "from_port", "the source L4 port"),
    ("--to-port", "to_port", "the destination L4 port"),
    ("--protocol", "protocol", "tcp, udp, sctp, icmp, icmpv4, icmpv6, http, dns, kafka"),
    ("--type", "type", "event type: drop, trace[:to-endpoint...], policy-verdict, l7, capture, trace-sock"),
    ("--traffic-direction", "traffic_direction", "ingress or egress"),
    ("--drop-reason-desc", "drop_reason_desc", "drop reason name, e.g. POLICY_DENIED"),
    ("--node-name", "node_name", "node name or glob (cluster/node)"),
    ("--http-status", "http_status", "HTTP status code or prefix (404, 5+)"),
    ("--allowlist", "allowlist", "a raw FlowFilter in JSON to allow (repeatable)"),
    ("--denylist", "denylist", "a raw FlowFilter in JSON to deny (repeatable)"),
]
_SHORT = {"--namespace": "-n", "--label": "-l"}


def filter_options(func: Callable) -> Callable:
    for flag, dest, help_text in reversed(_FILTER_FLAGS):
        names = [flag, dest] + ([_SHORT[flag]] if flag in _SHORT else [])
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
