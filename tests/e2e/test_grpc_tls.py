"""TLS and mTLS between our client and our server, with certificates made for the test (trustme)."""

from __future__ import annotations

import pytest

from certs import make_certs
from grpc_support import mixed_lines, playlist_of
from hubbletui.errors import HubbleTuiError, UnreachableError
from hubbletui.flows.model import Flow
from hubbletui.flows.request import FlowQuery
from hubbletui.server.replay import ReplayServer, ServerTls
from hubbletui.sources.base import FAILED, SourceState
from hubbletui.sources.dial import DialOptions
from hubbletui.sources.grpc_client import GrpcSource


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


async def test_expired_certificate_is_named_as_such_even_with_allow_insecure(tmp_path, playlist):
    import datetime

    import trustme

    ca = trustme.CA()
    old = ca.issue_cert("localhost", "127.0.0.1", not_before=datetime.datetime(2020, 1, 1),
                        not_after=datetime.datetime(2021, 1, 1))
    (tmp_path / "old.pem").write_bytes(old.cert_chain_pems[0].bytes())
    (tmp_path / "old-key.pem").write_bytes(old.private_key_pem.bytes())
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem.bytes())
    async with ReplayServer(playlist, speed=None, tls=ServerTls(str(tmp_path / "old.pem"),
                                                                str(tmp_path / "old-key.pem"))) as s:
        verified = await failure_of(DialOptions(server=f"tls://{s.address}", ca_files=(str(tmp_path / "ca.pem"),)))
        # grpcio cannot skip verification: --tls-allow-insecure trusts the certificate, not an expired one
        insecure = await failure_of(DialOptions(server=f"tls://{s.address}", allow_insecure=True))
    assert "certificate has expired" in verified and "certificate has expired" in insecure
