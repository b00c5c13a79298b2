"""`hubbletui record`: appends flushed jsonpb lines; Ctrl-C and kill -9 leave a readable file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import orjson
import pytest

from cli_run import run_cli
from paths import ROOT
from grpc_support import T0, ServerThread, flow_line, mixed_lines, playlist_of
from hubbletui.flows.model import Flow
from hubbletui.flows.recording import read_events


@pytest.fixture
def server(tmp_path):
    with ServerThread(playlist_of(mixed_lines(30), tmp_path), speed=None) as thread:
        yield thread


def start_record(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hubbletui", "record", *args], stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, cwd=ROOT, env={**os.environ, "TZ": "UTC"})


def wait_for_lines(path, count: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} did not reach {count} lines")


def test_record_a_window_then_append_more(server, tmp_path):
    out = tmp_path / "out.json"
    proc = run_cli("record", "--server", server.address, "--no-follow", "--verdict", "DROPPED", "-o", str(out))
    assert proc.returncode == 0 and proc.stdout == b""
    assert proc.stderr.decode() == f"hubbletui: recorded 10 flows to {out}\n"
    proc = run_cli("record", "--server", server.address, "--no-follow", "--last", "3", "-o", str(out))
    assert proc.returncode == 0 and "recorded 3 flows" in proc.stderr.decode()
    events = list(read_events(out))
    assert len(events) == 13 and all(isinstance(e, Flow) for e in events)
    assert [e.src_port for e in events[-3:]] == [40027, 40028, 40029]
    # what `hubble observe --input-file` reads: one GetFlowsResponse per line
    assert all(set(orjson.loads(line)) >= {"flow"} for line in out.read_bytes().splitlines())


def test_ctrl_c_ends_a_follow_recording_cleanly(tmp_path):
    lines = [flow_line(T0 + i * 20_000_000, sport=40000 + i) for i in range(500)]  # 10 s at 1x
    with ServerThread(playlist_of(lines, tmp_path), speed=1) as thread:
        out = tmp_path / "live.json"
        proc = start_record("--server", thread.address, "--last", "1000", "-o", str(out))
        wait_for_lines(out, 20)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    written = list(read_events(out))
    assert proc.returncode == 130  # as the README's exit codes say
    assert err.decode() == f"hubbletui: recorded {len(written)} flows to {out} (interrupted)\n"
    assert [e.src_port for e in written] == [40000 + i for i in range(len(written))]


def test_kill_9_loses_at_most_the_line_being_written_and_the_next_run_appends_cleanly(tmp_path):
    lines = [flow_line(T0 + i * 20_000_000, sport=40000 + i) for i in range(500)]
    with ServerThread(playlist_of(lines, tmp_path), speed=1) as thread:
        out = tmp_path / "live.json"
        proc = start_record("--server", thread.address, "--last", "1000", "-o", str(out))
        wait_for_lines(out, 20)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        complete = out.read_bytes().count(b"\n")
        assert len(list(read_events(out))) >= complete  # every completed line reads back
        with out.open("ab") as fh:
            fh.write(b'{"flow":{"time":"2023-')  # as if a crash had cut a line short
        proc = run_cli("record", "--server", thread.address, "--no-follow", "--last", "2", "-o", str(out))
    assert proc.returncode == 0
    reports = []
    events = list(read_events(out, reports.append))
    assert len(events) >= complete + 2 and len(reports) == 1 and f"live.json:{complete + 1}:" in reports[0]


def test_record_from_an_unreachable_server(tmp_path):
    out = tmp_path / "never.json"
    proc = run_cli("record", "--server", "127.0.0.1:9", "-o", str(out))
    assert proc.returncode == 4 and proc.stderr.decode().count("\n") == 1
    assert "cannot reach Hubble at 127.0.0.1:9" in proc.stderr.decode()


def test_record_to_stdout(server):
    proc = run_cli("record", "--server", server.address, "--no-follow", "-o", "-")
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 30
    assert "recorded 30 flows to stdout" in proc.stderr.decode()
