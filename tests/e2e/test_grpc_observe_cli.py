"""`hubbletui observe --server`: the same output and filters as the file mode, over real loopback gRPC."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

from certs import make_certs
from cli_run import run_cli
from grpc_support import ServerThread, mixed_lines, playlist_of, write_recording
from hubbletui.cli import cli
from hubbletui.flows.recording import read_events
from hubbletui.server.replay import ServerTls


@pytest.fixture
def recording(tmp_path):
    return write_recording(tmp_path / "rec.json", mixed_lines(45))


@pytest.fixture
def server(recording, tmp_path):
    with ServerThread(playlist_of(mixed_lines(45), tmp_path, "served.json"), speed=None) as thread:
        yield thread


def observe(*args: str) -> tuple[int, str, str]:
    proc = run_cli("observe", *args)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def observe_here(*args: str) -> tuple[bytes, str]:
    """In this process (the subprocess tests below cover exit codes and stderr): stdout bytes and stderr."""
    result = CliRunner().invoke(cli, ["observe", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stdout_bytes, result.stderr


@pytest.mark.parametrize("filters", [("--all",), ("--all", "--verdict", "DROPPED"),
                                     ("--all", "--to-port", "8080", "--node-name", "kind-worker2"),
                                     ("--all", "--from-pod", "shop/cart-2"), ("--last", "4")])
def test_server_output_equals_file_output(server, recording, filters):
    from_server, err = observe_here("--server", server.address, "-o", "compact", *filters)
    from_file, _ = observe_here("--input-file", str(recording), "-o", "compact", *filters)
    assert from_server == from_file and from_server
    assert err == ""  # node greetings are not news, and nothing else went wrong


def test_jsonpb_from_the_server_is_the_recording(server, recording, tmp_path):
    out, _ = observe_here("--server", server.address, "--all", "-o", "jsonpb", "--verdict", "DROPPED")
    served = tmp_path / "served.json"
    served.write_bytes(out)
    # the same flows field for field (times may be written with fewer digits, as protojson does)
    assert [e[:-1] for e in read_events(served)] == [e[:-1] for e in read_events(recording)
                                                     if e.verdict == "DROPPED"]


def test_a_plain_request_asks_for_the_last_20(server):
    out, _ = observe_here("--server", server.address, "-o", "jsonpb")
    assert len(out.splitlines()) == 20


def test_unreachable_server_is_one_line_and_exit_4():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, out, err = observe("--server", f"127.0.0.1:{port}", "-o", "jsonpb")
    assert code == 4 and out == ""
    assert err == f"hubbletui: cannot reach Hubble at 127.0.0.1:{port}: connection refused\n"


def test_server_from_environment_and_tls_flag_mistakes():
    proc = run_cli("observe", "--tls-ca-cert-files", "/nonexistent.pem", "-o", "jsonpb",
                   env={"HUBBLE_SERVER": "127.0.0.1:9"})
    assert proc.returncode == 1
    assert proc.stderr.decode() == ("hubbletui: --tls-ca-cert-files needs TLS: add --tls or write the server as "
                                    "tls://127.0.0.1:9\n")


def test_observe_over_mutual_tls(tmp_path):
    certs = make_certs(tmp_path / "certs")
    tls = ServerTls(str(certs.server_cert), str(certs.server_key), client_ca_files=(str(certs.ca),))
    with ServerThread(playlist_of(mixed_lines(10), tmp_path), speed=None, tls=tls) as thread:
        code, out, err = observe("--server", f"tls://{thread.address}", "--tls-ca-cert-files", str(certs.ca),
                                 "--tls-client-cert-file", str(certs.client_cert), "--tls-client-key-file",
                                 str(certs.client_key), "--all", "-o", "jsonpb")
        assert code == 0 and len(out.splitlines()) == 10, err
        code, out, err = observe("--server", f"tls://{thread.address}", "--tls-ca-cert-files", str(certs.other_ca),
                                 "-o", "jsonpb")
    assert code == 4 and "not signed by a trusted CA" in err and len(err.splitlines()) == 1
