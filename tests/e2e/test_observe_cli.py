"""`hubbletui observe --input-file`: hubble's filters and output formats, stdout data only, quiet pipes."""

from __future__ import annotations

import subprocess
import sys

import orjson

from cli_run import run_cli
from paths import ROOT


def observe(samples_dir, name, *args):
    proc = run_cli("observe", "--input-file", str(samples_dir / name), *args)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc


def jsonpb_flows(proc):
    return [orjson.loads(line)["flow"] for line in proc.stdout.splitlines()]


def test_piped_output_defaults_to_jsonpb_and_filters_apply(samples_dir):
    flows = jsonpb_flows(observe(samples_dir, "hubble-otel__basic-sample-400-tcp-flows.json", "--verdict",
                                 "REDIRECTED"))
    assert flows and all(f["verdict"] == "REDIRECTED" for f in flows)
    ns = jsonpb_flows(observe(samples_dir, "hubble-otel__basic-sample-400-tcp-flows.json", "-n", "kube-system"))
    assert ns and all("kube-system" in (f.get("source", {}).get("namespace"), f.get("destination", {})
                                        .get("namespace")) for f in ns)
    to_port = jsonpb_flows(observe(samples_dir, "hubble-otel__basic-sample-400-tcp-flows.json", "--to-port", "9080"))
    assert to_port and all(f["l4"]["TCP"]["destination_port"] == 9080 for f in to_port)


def test_label_protocol_and_type_filters(samples_dir):
    dns = jsonpb_flows(observe(samples_dir, "hubble-otel__basic-sample-330-dns-flows.json", "--protocol", "dns",
                               "--type", "l7"))
    assert dns and all("dns" in f["l7"] for f in dns)
    labelled = jsonpb_flows(observe(samples_dir, "hubble-otel__basic-sample-400-tcp-flows.json",
                                    "--from-label", "k8s:app=productpage"))
    assert labelled and all("k8s:app=productpage" in f["source"]["labels"] for f in labelled)
    drops = jsonpb_flows(observe(samples_dir, "cilium-docs__hubble-exporter-output.jsonl",
                                 "--drop-reason-desc", "POLICY_DENIED"))
    assert [f["source"]["pod_name"] for f in drops] == ["xwing"]
    # the exporter's lines carry no event type: as in hubble, they are no drop event
    assert not jsonpb_flows(observe(samples_dir, "cilium-docs__hubble-exporter-output.jsonl", "--type", "drop"))


def test_first_last_since_until(samples_dir):
    name = "hubble-otel__basic-sample-10-flows.json"
    everything = jsonpb_flows(observe(samples_dir, name))
    assert len(everything) == 10
    assert jsonpb_flows(observe(samples_dir, name, "--first", "3")) == everything[:3]
    assert jsonpb_flows(observe(samples_dir, name, "--last", "2")) == everything[-2:]
    since = everything[5]["time"]
    assert jsonpb_flows(observe(samples_dir, name, "--since", since))[0]["time"] >= since
    assert all(f["time"] <= since for f in jsonpb_flows(observe(samples_dir, name, "--until", since)))


def test_wide_and_table_output(samples_dir):
    compact = observe(samples_dir, "cilium-docs__hubble-exporter-output.jsonl", "-o", "wide").stdout.decode()
    line = compact.splitlines()[1]
    assert "default/xwing:44916 -> default/deathstar-7848d6c4d5-th9v2:80" in line
    assert "DROPPED POLICY_DENIED" in line and "\x1b[" not in line
    coloured = observe(samples_dir, "cilium-docs__hubble-exporter-output.jsonl", "-o", "wide", "--color",
                       "always").stdout.decode()
    assert "\x1b[31mDROPPED" in coloured
    no_color = run_cli("observe", "--input-file", str(samples_dir / "cilium-docs__hubble-exporter-output.jsonl"),
                       "-o", "wide", "--color", "auto", env={"NO_COLOR": "1"})
    assert b"\x1b[" not in no_color.stdout
    table = observe(samples_dir, "hubble-otel__basic-sample-10-flows.json", "-o", "table").stdout.decode()
    rows = table.splitlines()
    assert rows[0].split() == ["TIMESTAMP", "SOURCE", "DESTINATION", "TYPE", "VERDICT", "SUMMARY"]
    assert len(rows) == 11


def test_untrusted_names_cannot_inject_escape_sequences(tmp_path):
    evil = {"flow": {"time": "2026-11-27T23:00:01Z", "verdict": "DROPPED",
                     "source": {"namespace": "a", "pod_name": "x\u001b[2J\u001b]0;pwned\u0007"},
                     "destination": {"namespace": "b", "pod_name": "[bold red]q[/]"}}}
    path = tmp_path / "evil.json"
    path.write_bytes(orjson.dumps(evil) + b"\n")
    out = run_cli("observe", "--input-file", str(path), "-o", "wide").stdout.decode()
    assert "\x1b" not in out and "\x07" not in out
    assert "x\\x1b[2J\\x1b]0;pwned\\x07" in out and "[bold red]q[/]" in out


def test_stdin_and_pipe_to_head(samples_dir):
    data = (samples_dir / "hubble-otel__basic-sample-400-tcp-flows.json").read_bytes()
    proc = run_cli("observe", "--input-file", "-", "--last", "5", input=data)
    assert len(proc.stdout.splitlines()) == 5
    shell = subprocess.run(f"{sys.executable} -m hubbletui observe --input-file - -o compact < "
                           f"{samples_dir / 'hubble-otel__basic-sample-400-tcp-flows.json'} | head -1; "
                           "echo status=${PIPESTATUS[0]}", shell=True, capture_output=True, text=True,
                           executable="/bin/bash", cwd=ROOT)
    assert shell.stdout.splitlines()[-1] == "status=0"
    assert shell.stderr == ""


def test_usage_errors_exit_2(samples_dir):
    proc = run_cli("observe", "--input-file", str(samples_dir / "hubble-otel__basic-sample-10-flows.json"),
                   "--verdict", "NOPE")
    assert proc.returncode == 2 and b"unknown verdict" in proc.stderr and b"Traceback" not in proc.stderr
    proc = run_cli("observe", "--input-file", "x", "--from-ip", "10.0.0.300")
    assert proc.returncode == 2


def test_headless_commands_never_import_textual(samples_dir):
    code = ("import sys; from hubbletui.cli import main; "
            f"main(['observe', '--input-file', {str(samples_dir / 'hubble-otel__basic-sample-10-flows.json')!r}, "
            "'-o', 'compact']); "
            "print('TEXTUAL' if any(m == 'textual' or m.startswith('textual.') for m in sys.modules) else 'CLEAN')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.stdout.splitlines()[-1] == "CLEAN"
