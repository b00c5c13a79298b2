"""Certificates made for each test run (trustme): a CA, a server certificate, a client certificate, and a CA
that signed neither, written as PEM files the way an operator would pass them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class Certs:
    ca: Path  # signed the server and client certificates
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA nobody here uses
    stranger_cert: Path  # a client certificate signed by other_ca
    stranger_key: Path
    server_name: str  # the DNS name in the server certificate (besides localhost and 127.0.0.1)


def make_certs(folder: Path, server_name: str = "relay.hubble-relay.cilium.io") -> Certs:
    folder.mkdir(parents=True, exist_ok=True)
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert(server_name, "localhost", "127.0.0.1")
    client = ca.issue_cert("hubbletui-client.example")
    stranger = other.issue_cert("stranger.example")

    def write(name: str, blob) -> Path:
        path = folder / name
        path.write_bytes(blob.bytes())
        return path

    def write_chain(name: str, leaf) -> Path:
        path = folder / name
        path.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
        return path

    return Certs(
        ca=write("ca.pem", ca.cert_pem), server_cert=write_chain("server.pem", server),
        server_key=write("server-key.pem", server.private_key_pem),
        client_cert=write_chain("client.pem", client), client_key=write("client-key.pem", client.private_key_pem),
        other_ca=write("other-ca.pem", other.cert_pem), stranger_cert=write_chain("stranger.pem", stranger),
        stranger_key=write("stranger-key.pem", stranger.private_key_pem), server_name=server_name)
