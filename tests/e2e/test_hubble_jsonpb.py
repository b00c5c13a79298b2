"""`observe -o jsonpb|json` against the real hubble CLI v1.19.4: the same bytes on stdout (flows and lost
events) and on stderr (node status lines: only bad news unless --debug), and `--field-mask` as hubble takes it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from paths import FIXTURES, ROOT, SAMPLES, SHARED

HUBBLE = SHARED / "hubble" / "hubble"
pytestmark = pytest.mark.skipif(not HUBBLE.exists(), reason=f"the real hubble CLI is not at {HUBBLE}")
# legacy bare flows are ours to read (hubble skips them); camel_case.jsonl waits for our protos to declare
# Endpoint's fields in upstream's order (cluster_name after identity), which Go's key order follows
RECORDINGS = [*sorted(p for p in SAMPLES.glob("*") if p.is_file()), ROOT / "hubbletui" / "demo" / "flows.jsonl",
              *(p for p in sorted((FIXTURES / "flows").glob("*.jsonl"))
                if p.name not in ("legacy_bare_flow.jsonl", "camel_case.jsonl"))]


def run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, timeout=120, cwd=ROOT, env={**os.environ, "TZ": "UTC"})


def hubble_stderr(proc: subprocess.CompletedProcess) -> bytes:
    return b"".join(line + b"\n" for line in proc.stderr.splitlines() if b"level=" not in line)


@pytest.mark.parametrize("output", ["jsonpb", "json"])
@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_jsonpb_bytes_equal_hubbles(path, output):
    ours = run([sys.executable, "-m", "hubbletui", "observe", "--input-file", str(path), "-o", output])
    theirs = run([str(HUBBLE), "observe", "--input-file", str(path), "--all", "-o", output])
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout
    assert ours.stderr == hubble_stderr(theirs)


@pytest.mark.parametrize("debug", [[], ["--debug"]])
def test_node_status_goes_to_stderr_and_lost_events_to_stdout(debug):
    path = FIXTURES / "flows" / "node_status_lost_events.jsonl"
    ours = run([sys.executable, "-m", "hubbletui", "observe", "--input-file", str(path), "-o", "jsonpb", *debug])
    theirs = run([str(HUBBLE), "observe", "--input-file", str(path), "--all", "-o", "jsonpb", *debug])
    assert b'"lost_events"' in ours.stdout and b'"node_status"' not in ours.stdout
    assert ours.stderr.count(b'"node_status"') == (2 if debug else 1)
    assert (ours.stdout, ours.stderr) == (theirs.stdout, hubble_stderr(theirs))


def test_field_mask_is_sent_and_bad_paths_refused():
    from grpc_support import ServerThread
    from hubbletui.flows.recording import read_events
    from hubbletui.server.playlist import Playlist

    demo = ROOT / "hubbletui" / "demo" / "flows.jsonl"
    with ServerThread(Playlist.from_events(read_events(demo), "demo"), speed=None) as server:
        args = ["--server", server.address, "--last", "5", "-o", "jsonpb", "--field-mask", "time,verdict",
                "--field-mask", "source.pod_name"]
        ours = run([sys.executable, "-m", "hubbletui", "observe", *args])
        theirs = run([str(HUBBLE), "observe", *args])
        assert ours.returncode == theirs.returncode == 0, ours.stderr
        assert ours.stdout == theirs.stdout and ours.stdout.count(b"\n") == 5
        bad = run([sys.executable, "-m", "hubbletui", "observe", "--server", server.address, "--field-mask", "nope"])
        assert bad.returncode == 2 and b"--field-mask" in bad.stderr
