"""TLS and mTLS between our client and our server, with certificates made for the test (trustme)."""

from __future__ import annotations

import datetime

import pytest

from certs import make_certs
from grpc_support import T0, mixed_lines, playlist_of
from hubbletui.errors import HubbleTuiError, UnreachableError
from hubbletui.flows.model import Flow
from hubbletui.flows.request import FlowQuery
from hubbletui.server.replay import ReplayServer, ServerTls
from hubbletui.sources.base import ENDED, FAILED, SourceState
from hubbletui.sources.dial import DialOptions
from hubbletui.sources.grpc_client import GrpcSource, RetryPolicy


FAST_RETRY = RetryPolicy(first_delay=0.05, max_delay=0.1, jitter=0.0)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def playlist(tmp_path):
    return playlist_of(mixed_lines(12), tmp_path)


async def run(options: DialOptions) -> tuple[list[Flow], list[SourceState], GrpcSource]:
    source = GrpcSource(options, FlowQuery(), fail_fast=True)
    flows, states = [], []
    async for item in source.events():
        (states if isinstance(item, SourceState) else flows).append(item)
    return [f for f in flows if isinstance(f, Flow)], states, source


async def failure_of(options: DialOptions) -> str:
    flows, states, source = await run(options)
    assert not flows and states[-1].state == FAILED
    assert isinstance(source.failure, UnreachableError)
    return str(source.failure)


async def test_tls_with_the_signing_ca(certs, playlist):
    async with ReplayServer(playlist, speed=None, tls=ServerTls(str(certs.server_cert), str(certs.server_key))) as s:
        flows, _, source = await run(DialOptions(server=f"tls://{s.address}", ca_files=(str(certs.ca),)))
        assert len(flows) == 12 and source.describe() == f"hubble tls://{s.address} (TLS)"
        # the name the certificate carries, while dialing an IP: --tls-server-name
        named, _, _ = await run(DialOptions(server=s.address, tls=True, ca_files=(str(certs.ca),),
                                            server_name=certs.server_name))
        assert len(named) == 12


async def test_mutual_tls(certs, playlist):
    tls = ServerTls(str(certs.server_cert), str(certs.server_key), client_ca_files=(str(certs.ca),))
    async with ReplayServer(playlist, speed=None, tls=tls) as s:
        base = dict(server=f"tls://{s.address}", ca_files=(str(certs.ca),))
        flows, _, _ = await run(DialOptions(**base, client_cert_file=str(certs.client_cert),
                                            client_key_file=str(certs.client_key)))
        assert len(flows) == 12
        without = await failure_of(DialOptions(**base))
        stranger = await failure_of(DialOptions(**base, client_cert_file=str(certs.stranger_cert),
                                                client_key_file=str(certs.stranger_key)))
    assert f"cannot reach Hubble at tls://{s.address}: TLS:" in without and "client certificate" in without
    assert "TLS:" in stranger and "client certificate" in stranger


async def test_wrong_ca_and_name_mismatch_are_explained(certs, playlist):
    async with ReplayServer(playlist, speed=None, tls=ServerTls(str(certs.server_cert), str(certs.server_key))) as s:
        wrong_ca = await failure_of(DialOptions(server=f"tls://{s.address}", ca_files=(str(certs.other_ca),)))
        mismatch = await failure_of(DialOptions(server=f"tls://{s.address}", ca_files=(str(certs.ca),),
                                                server_name="instance.elsewhere.example"))
        no_tls = await failure_of(DialOptions(server=s.address))
    assert "the server's certificate is not signed by a trusted CA" in wrong_ca
    assert "not valid for the name 'instance.elsewhere.example'" in mismatch and "--tls-server-name" in mismatch
    assert "try --tls" in no_tls


async def test_tls_client_against_a_plaintext_server(playlist):
    async with ReplayServer(playlist, speed=None) as s:
        message = await failure_of(DialOptions(server=f"tls://{s.address}"))
    assert "TLS handshake failed: the server does not speak TLS" in message


async def test_allow_insecure_trusts_the_presented_certificate_for_this_connection(certs, playlist):
    async with ReplayServer(playlist, speed=None, tls=ServerTls(str(certs.server_cert), str(certs.server_key))) as s:
        options = DialOptions(server=f"tls://{s.address}", allow_insecure=True)
        flows, _, source = await run(options)
    assert len(flows) == 12 and "unverified" in source.describe()


def test_bad_tls_material_fails_before_connecting(certs, tmp_path):
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    fake_pem = tmp_path / "fake.pem"
    fake_pem.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    cases = [
        (dict(ca_files=(str(tmp_path / "missing.pem"),)), "missing.pem: no such file"),
        (dict(ca_files=(str(not_pem),)), "not a PEM file"),
        (dict(ca_files=(str(fake_pem),)), "no usable CA certificate"),
        (dict(client_cert_file=str(certs.client_cert)), "go together"),
        (dict(client_cert_file=str(certs.client_cert), client_key_file=str(certs.server_key)),
         "the key does not belong to the certificate"),
    ]
    for extra, words in cases:
        with pytest.raises(HubbleTuiError, match=words):
            GrpcSource(DialOptions(server="tls://localhost:4245", **extra))
    with pytest.raises(HubbleTuiError, match="--tls-ca-cert-files needs TLS"):
        GrpcSource(DialOptions(server="localhost:4245", ca_files=(str(certs.ca),)))


def test_bad_server_tls_material(certs, tmp_path):
    with pytest.raises(HubbleTuiError, match="the key does not belong"):
        ServerTls(str(certs.server_cert), str(certs.client_key)).credentials()
    with pytest.raises(HubbleTuiError, match="no such file"):
        ServerTls(str(tmp_path / "nope.pem"), str(certs.server_key)).credentials()


def out_of_date_certificate(folder, not_before, not_after) -> ServerTls:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1", not_before=not_before, not_after=not_after)
    (folder / "old.pem").write_bytes(cert.cert_chain_pems[0].bytes())
    (folder / "old-key.pem").write_bytes(cert.private_key_pem.bytes())
    (folder / "ca.pem").write_bytes(ca.cert_pem.bytes())
    return ServerTls(str(folder / "old.pem"), str(folder / "old-key.pem"))


@pytest.mark.parametrize("not_before, not_after, words", [
    (datetime.datetime(2020, 1, 1), datetime.datetime(2021, 1, 1), "certificate has expired"),
    (datetime.datetime(2300, 1, 1), datetime.datetime(2301, 1, 1), "certificate is not yet valid"),
])
async def test_an_out_of_date_certificate_is_refused_verified_and_accepted_with_a_warning_when_insecure(
        tmp_path, playlist, not_before, not_after, words):
    tls = out_of_date_certificate(tmp_path, not_before, not_after)
    async with ReplayServer(playlist, speed=None, tls=tls) as s:
        verified = await failure_of(DialOptions(server=f"tls://{s.address}", ca_files=(str(tmp_path / "ca.pem"),)))
        # hubble's --tls-allow-insecure skips every check, dates included: so does ours
        flows, states, source = await run(DialOptions(server=f"tls://{s.address}", allow_insecure=True))
        notices = source.take_notices()
    assert "has expired or is not valid yet" in verified
    assert len(flows) == 12 and states[-1].state == ENDED
    assert len(notices) == 1 and words in notices[0] and "accepted under --tls-allow-insecure" in notices[0]
    assert source.take_notices() == []  # said once


def other_certs(tmp_path) -> ServerTls:
    again = make_certs(tmp_path / "other")  # another CA, another certificate for the same names
    return ServerTls(str(again.server_cert), str(again.server_key))


@pytest.mark.parametrize("first_out_of_date", [False, True])
async def test_allow_insecure_pins_the_first_certificate_and_refuses_another_on_reconnect(
        certs, tmp_path, first_out_of_date):
    lines = mixed_lines(6)
    first_tls = out_of_date_certificate(tmp_path, datetime.datetime(2020, 1, 1), datetime.datetime(2021, 1, 1)) \
        if first_out_of_date else ServerTls(str(certs.server_cert), str(certs.server_key))
    first = ReplayServer(playlist_of(lines, tmp_path, "a.json"), speed=None, tls=first_tls)
    address = await first.start()
    source = GrpcSource(DialOptions(server=f"tls://{address}", allow_insecure=True),
                        FlowQuery(follow=True, since_ns=T0), retry=FAST_RETRY)
    flows, states = [], []
    second = None
    async for item in source.events():
        if isinstance(item, SourceState):
            states.append(item)
            if item.state == FAILED:
                break
        elif isinstance(item, Flow):
            flows.append(item)
            if len(flows) == 6:
                # the server goes; another takes its port with another certificate
                await first.stop()
                second = ReplayServer(playlist_of(lines, tmp_path, "b.json"), speed=None, tls=other_certs(tmp_path),
                                      listen=address)
                await second.start()
    await second.stop()
    assert len(flows) == 6
    failure = str(source.failure)
    assert "now presents a different certificate" in failure and "refused" in failure, failure
    assert states[-1].state == FAILED
    assert sum(s.state == "retrying" for s in states) == 1  # refused at once: not retried


async def test_allow_insecure_reconnects_to_the_same_certificate(certs, tmp_path):
    lines = mixed_lines(6)
    tls = ServerTls(str(certs.server_cert), str(certs.server_key))
    server = ReplayServer(playlist_of(lines, tmp_path), speed=None, tls=tls)
    address = await server.start()
    source = GrpcSource(DialOptions(server=f"tls://{address}", allow_insecure=True),
                        FlowQuery(follow=True, since_ns=T0), retry=FAST_RETRY)
    flows = []
    restarted = False
    async for item in source.events():
        if isinstance(item, Flow):
            flows.append(item)
            if len(flows) == 6 and not restarted:
                restarted = True
                await server.stop()
                server = ReplayServer(playlist_of(lines + mixed_lines(8)[6:], tmp_path, "more.json"), speed=None,
                                      tls=tls, listen=address)
                await server.start()
            if len(flows) == 8:
                break
    await server.stop()
    assert len(flows) == 8 and source.stats.reconnects == 1
