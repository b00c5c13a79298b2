"""Recordings: read from files, .gz and stdin; bad lines reported with their number and skipped; written back
as jsonpb that carries every field of the input."""

from __future__ import annotations

import gzip
import io

import orjson

from cli_run import run_cli
from hubbletui.flows.recording import RecordingReader, read_events, write_jsonpb

GOOD = (b'{"flow":{"time":"2026-11-27T23:00:01Z","verdict":"DROPPED","drop_reason_desc":"POLICY_DENIED",'
        b'"source":{"namespace":"a","pod_name":"p"},"destination":{"namespace":"b","pod_name":"q"},'
        b'"l4":{"TCP":{"source_port":1,"destination_port":80}}},"node_name":"n1","time":"2026-11-27T23:00:01Z"}\n')


def test_write_then_read_is_exact(samples_dir, tmp_path):
    for path in sorted(samples_dir.iterdir()):
        events = list(read_events(path))
        out = tmp_path / "out.json"
        with open(out, "wb") as fh:
            assert write_jsonpb(events, fh) == len(events)
        originals = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
        written = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        assert written == originals
        assert [e[:-1] for e in read_events(out)] == [e[:-1] for e in events]


def test_gzip_and_stream_sources(tmp_path):
    gz = tmp_path / "flows.json.gz"  # detected by its magic bytes, not its name
    gz.write_bytes(gzip.compress(GOOD * 3))
    assert len(list(read_events(gz))) == 3
    assert len(list(read_events(io.BytesIO(GOOD * 2)))) == 2


def test_bad_lines_are_reported_with_line_numbers_and_skipped(tmp_path):
    path = tmp_path / "mixed.json"
    path.write_bytes(GOOD + b"[1,2]\n" + b"{not json\n" + b'{"flow":{"l4":{"TCP":[]}}}\n' + b"\n" + GOOD
                     + b'{"flow":' + b"x" * (10 << 20) + b"}\n" + GOOD)
    messages = []
    reader = RecordingReader(path, report=messages.append)
    events = list(reader)
    assert len(events) == 3
    assert reader.stats.malformed == 4
    assert [m.split(": ")[0] for m in messages] == [f"{path}:{n}" for n in (2, 3, 4, 7)]
    assert "expected a JSON object" in messages[0]
    assert "not JSON" in messages[1]
    assert "longer than any Hubble event" in messages[3]


def test_cli_failures_are_one_line_without_traceback(tmp_path):
    binary = tmp_path / "capture.pcap"
    binary.write_bytes(b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00" + bytes(range(256)) * 8)
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    cases = {str(tmp_path / "missing.json"): (1, "no such file"), str(binary): (1, "binary data"),
             str(tmp_path): (1, "is a directory"), str(empty): (0, "empty recording")}
    for path, (code, text) in cases.items():
        proc = run_cli("observe", "--input-file", path, "-o", "jsonpb")
        err = proc.stderr.decode()
        assert proc.returncode == code, err
        assert text in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
        assert proc.stdout == b""


def test_cli_keeps_good_lines_around_bad_ones(tmp_path):
    path = tmp_path / "mixed.json"
    path.write_bytes(GOOD + b'{"flow":{"time":12}}\n' + GOOD)
    proc = run_cli("observe", "--input-file", str(path), "-o", "jsonpb")
    assert proc.returncode == 0
    assert len(proc.stdout.splitlines()) == 2
    assert f"{path}:2:" in proc.stderr.decode()
