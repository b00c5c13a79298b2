"""`hubbletui serve`: a real process serving a recording, used by real gRPC clients."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import grpc
import pytest

from certs import make_certs
from cli_run import run_cli
from paths import ROOT
from grpc_support import mixed_lines, write_recording
from hubbletui.proto.observer import observer_pb2, observer_pb2_grpc


class Serve:
    """`hubbletui serve ...` in a subprocess; ``address`` is read from its first stderr line."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "hubbletui", "serve", *args, "--listen", "127.0.0.1:0"],
                                     stderr=subprocess.PIPE, cwd=ROOT, env={**os.environ, "TZ": "UTC"})
        self.banner = self.proc.stderr.readline().decode()
        match = re.search(r" on (?:tls://)?(127\.0\.0\.1:\d+) ", self.banner)
        assert match, self.banner
        self.address = match[1]

    def stop(self, sig=signal.SIGINT) -> tuple[int, str]:
        self.proc.send_signal(sig)
        _, err = self.proc.communicate(timeout=10)
        return self.proc.returncode, err.decode()

    def __enter__(self) -> Serve:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def recording(tmp_path):
    return write_recording(tmp_path / "incident.json", mixed_lines(40))


def test_serve_answers_any_hubble_client_and_stops_on_ctrl_c(recording):
    with Serve(str(recording), "--no-pacing") as serve:
        assert "serving 40 flows (2 nodes) from" in serve.banner and "all at once" in serve.banner
        with grpc.insecure_channel(serve.address) as channel:
            stub = observer_pb2_grpc.ObserverStub(channel)
            responses = list(stub.GetFlows(observer_pb2.GetFlowsRequest(number=5), timeout=10))
            status = stub.ServerStatus(observer_pb2.ServerStatusRequest(), timeout=10)
        assert sum(r.HasField("flow") for r in responses) == 5
        assert status.num_flows == 40 and status.num_connected_nodes.value == 2
        code, err = serve.stop()
    assert code == 0 and err == "hubbletui: stopped\n"


def test_serve_then_observe_with_filters_and_sigterm(recording):
    with Serve(str(recording), "--speed", "1000") as serve:
        proc = run_cli("observe", "--server", serve.address, "--all", "--verdict", "DROPPED", "-o", "jsonpb")
        assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 14
        code, _ = serve.stop(signal.SIGTERM)
    assert code == 0


def test_serve_over_tls(recording, tmp_path):
    certs = make_certs(tmp_path / "certs")
    with Serve(str(recording), "--no-pacing", "--tls-cert-file", str(certs.server_cert), "--tls-key-file",
               str(certs.server_key)) as serve:
        assert " on tls://127.0.0.1:" in serve.banner
        proc = run_cli("observe", "--server", f"tls://{serve.address}", "--tls-ca-cert-files", str(certs.ca),
                       "--all", "-o", "jsonpb")
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 40


@pytest.mark.parametrize("args, code, words", [
    (["--no-pacing", "--loop"], 2, "--loop needs pacing"),
    (["--speed", "0"], 2, "must be positive"),
    (["--tls-cert-file", "x.pem"], 2, "go together"),
    (["--tls-client-ca-files", "ca.pem"], 2, "needs --tls-cert-file"),
])
def test_serve_refuses_bad_flags(recording, args, code, words):
    proc = run_cli("serve", str(recording), *args)
    assert proc.returncode == code and words in proc.stderr.decode()


def test_serve_reports_a_missing_recording_and_a_busy_port(recording, tmp_path):
    proc = run_cli("serve", str(tmp_path / "missing.json"))
    assert proc.returncode == 1 and proc.stderr.decode() == f"hubbletui: {tmp_path / 'missing.json'}: no such file\n"
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    proc = run_cli("serve", str(empty))
    assert proc.returncode == 1 and "no events to serve" in proc.stderr.decode()
    with Serve(str(recording), "--no-pacing") as serve:
        proc = run_cli("serve", str(recording), "--listen", serve.address)
    assert proc.returncode == 1 and f"cannot listen on {serve.address}" in proc.stderr.decode()


def test_a_malformed_listen_address_is_refused_not_replaced():

    for listen in ("127.0.0.1:99999", "4245", "127.0.0.1:http"):
        proc = run_cli("serve", "tests/fixtures/flows/policy_denied_egress.jsonl", "--listen", listen, timeout=30)
        assert proc.returncode == 2 and b"HOST:PORT" in proc.stderr, proc.stderr
