"""Server addresses and dial flags as the hubble CLI takes them; a unix socket end to end."""

from __future__ import annotations

import pytest

from grpc_support import mixed_lines, playlist_of
from hubbletui.errors import HubbleTuiError
from hubbletui.flows.model import Flow
from hubbletui.flows.request import FlowQuery
from hubbletui.server.replay import ReplayServer
from hubbletui.cli.flags import UnclaimedFlags, split
from hubbletui.cli.flow_options import ServerFlags
from hubbletui.flows.request import FilterSpec
from hubbletui.sources.dial import DEFAULT_SERVER, DialOptions, explain_details, parse_address
from hubbletui.sources.grpc_client import GrpcSource


@pytest.mark.parametrize("text, target, tls", [
    ("localhost:4245", "localhost:4245", False),
    ("tls://relay.example:443", "relay.example:443", True),
    ("[::1]:4245", "[::1]:4245", False),
    ("tls://[fd00::1]:4245", "[fd00::1]:4245", True),
    ("unix:///var/run/cilium/hubble.sock", "unix:/var/run/cilium/hubble.sock", False),
    ("unix:/var/run/cilium/hubble.sock", "unix:/var/run/cilium/hubble.sock", False),
])
def test_address_forms(text, target, tls):
    address = parse_address(text)
    assert (address.target, address.tls) == (target, tls)


@pytest.mark.parametrize("text, words", [
    ("localhost", "expected host:port"),
    ("localhost:http", "not a port number"),
    ("localhost:70000", "not a port number"),
    ("http://localhost:4245", "unknown scheme http://"),
    ("::1:4245", r"\[addr\]:port"),
    ("unix://", "no socket path"),
    ("", "empty address"),
])
def test_bad_addresses_say_what_is_wrong(text, words):
    with pytest.raises(HubbleTuiError, match=words):
        parse_address(text)


def test_cli_flags_are_split_into_records_and_checked():
    kwargs = {"tls": False, "tls_allow_insecure": False, "tls_ca_cert_files": (), "tls_client_cert_file": None,
              "tls_client_key_file": None, "tls_server_name": None, "timeout": 2.5, "verdict": ("DROPPED",)}
    filters, server = split(kwargs, FilterSpec, ServerFlags)
    assert filters.verdict == ("DROPPED",) and server.timeout == 2.5
    with pytest.raises(UnclaimedFlags, match="verdict"):  # a flag nobody reads is a bug, not ignored
        split(kwargs, ServerFlags)
    options = server.dial_options(None)
    assert options.server == DEFAULT_SERVER and options.timeout == 2.5 and options.check() is None
    with pytest.raises(HubbleTuiError, match="--tls-server-name needs TLS"):
        DialOptions(server_name="relay.example").check()
    with pytest.raises(HubbleTuiError, match="--timeout"):
        DialOptions(timeout=0).check()


def test_connection_errors_become_words():
    options = DialOptions(server="relay.invalid:4245")
    assert explain_details("failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Failed to "
                           "connect to remote host: Connection refused", options) == "connection refused"
    assert "cannot resolve host 'relay.invalid'" in explain_details(
        "errors resolving relay.invalid:4245: [field:hostname lookup error:address lookup failed for "
        "relay.invalid:4245: Domain name not found]", options)
    unix = DialOptions(server="unix:///run/none.sock")
    assert explain_details("last error: FAILED_PRECONDITION: unix:/run/none.sock: connect failed: error: No such "
                           "file or directory", unix) == "no socket at /run/none.sock"
    # server-sent text stays text
    assert "\x1b" not in explain_details("last error: \x1b[31mred", options)


async def test_unix_socket_end_to_end(tmp_path):
    socket_path = tmp_path / "hubble.sock"
    async with ReplayServer(playlist_of(mixed_lines(8), tmp_path), listen=f"unix://{socket_path}", speed=None):
        source = GrpcSource(DialOptions(server=f"unix://{socket_path}"), FlowQuery())
        flows = [e async for e in source.events() if isinstance(e, Flow)]
    assert len(flows) == 8
