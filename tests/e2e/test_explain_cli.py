"""`hubbletui explain` and the grouping behind it (hubbletui.diagnose.explain)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_run import run_cli
from paths import FIXTURES, shared_or_skip

from hubbletui.cli import main
from hubbletui.cluster.snapshot import load_snapshot
from hubbletui.flows.recording import read_events
from hubbletui.policy.engine import PolicyEngine
from hubbletui.diagnose.diagnosis import diagnose
from hubbletui.diagnose.groups import DISAGREEMENT, EXPLAINED, NOT_POLICY

STARWARS = FIXTURES / "clusters" / "starwars"
IPS = {"xwing": "10.244.1.60", "tiefighter": "10.244.1.61", "deathstar-7848d6c4d5-th9v2": "10.244.1.5"}


def flow_line(src: str, dst: str, *, verdict: str = "DROPPED", reason: str = "POLICY_DENIED", port: int = 80,
              direction: str = "INGRESS", second: int = 0, **extra) -> str:
    flow = {"time": f"2026-03-01T10:00:{second:02d}Z", "verdict": verdict,
            "IP": {"source": IPS[src], "destination": IPS[dst], "ipVersion": "IPv4"},
            "l4": {"TCP": {"source_port": 40000 + second, "destination_port": port, "flags": {"SYN": True}}},
            "source": {"namespace": "default", "pod_name": src},
            "destination": {"namespace": "default", "pod_name": dst},
            "traffic_direction": direction, "node_name": "kind-worker", **extra}
    if verdict == "DROPPED":
        flow["drop_reason_desc"] = reason
    return json.dumps({"flow": flow, "node_name": "kind-worker", "time": flow["time"]})


@pytest.fixture
def recording(tmp_path) -> Path:
    lines = [flow_line("xwing", "deathstar-7848d6c4d5-th9v2", second=i) for i in range(3)]
    lines += [flow_line("tiefighter", "deathstar-7848d6c4d5-th9v2", second=5),
              flow_line("xwing", "deathstar-7848d6c4d5-th9v2", reason="CT_MAP_INSERTION_FAILED", second=6),
              flow_line("tiefighter", "deathstar-7848d6c4d5-th9v2", verdict="FORWARDED", second=7),
              "{not json",
              flow_line("xwing", "deathstar-7848d6c4d5-th9v2", reason="POLICY_DENY", port=443, second=9,
                        ingress_denied_by=[{"name": "block", "namespace": "default",
                                            "kind": "CiliumNetworkPolicy"}])]
    path = tmp_path / "flows.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def groups_of(recording: Path):
    engine = PolicyEngine(load_snapshot(STARWARS))
    return diagnose(engine, read_events(str(recording), report=lambda message: None)).groups


def test_groups_and_their_status(recording):
    groups = groups_of(recording)
    summary = [(g.key.src, g.key.dst, g.key.port.number, g.key.reason, g.flows, g.status) for g in groups]
    assert summary == [
        ("default/xwing", "default/deathstar", 80, "POLICY_DENIED", 3, EXPLAINED),
        ("default/tiefighter", "default/deathstar", 80, "POLICY_DENIED", 1, DISAGREEMENT),
        ("default/xwing", "default/deathstar", 80, "CT_MAP_INSERTION_FAILED", 1, NOT_POLICY),
        ("default/xwing", "default/deathstar", 443, "POLICY_DENY", 1, EXPLAINED),
    ]
    explained = groups[0]
    assert explained.layer == "ingress" and explained.trace is not None
    assert explained.first_ns < explained.last_ns
    nearest = explained.trace.layer("ingress").nearest[0]
    assert [lack.text for lack in nearest.lacks] == ["label org=empire"]
    assert "cluster state allows it" in groups[1].explanation
    assert groups[2].explanation.startswith("CT_MAP_INSERTION_FAILED:") and groups[2].trace is None
    deny_notes = " ".join(groups[3].notes)
    assert "no matching deny rule" in deny_notes and "CiliumNetworkPolicy/default/block" in deny_notes


def test_json_output(recording, capsys):
    code = main(["explain", "--input-file", str(recording), "--cluster", str(STARWARS), "-o", "json"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    # Hubble names CiliumNetworkPolicy default/block, which the snapshot lacks: every answer may be wrong
    assert code == 5 and doc["incomplete"] == [
        "Hubble names CiliumNetworkPolicy/default/block (1 flow), which the cluster state does not hold"]
    assert "incomplete cluster state: Hubble names CiliumNetworkPolicy/default/block" in err
    assert doc["drops"] == 6 and doc["disagreements"] == 1
    first = doc["groups"][0]
    assert (first["src"], first["dst"], first["status"], first["layer"]) == \
        ("default/xwing", "default/deathstar", "explained", "ingress")
    assert first["trace"]["verdict"] == "denied" and first["reason_info"]["code"] == 133
    assert ":7:" in err  # the malformed line is reported with its number


def test_text_and_markdown(recording):
    proc = run_cli("explain", "--input-file", str(recording), "--cluster", str(STARWARS), "-o", "text")
    text = proc.stdout.decode()
    assert proc.returncode == 5  # the policy Hubble names is missing (see test_json_output)
    assert text.splitlines()[0].startswith("default/xwing -> default/deathstar 80/TCP (POLICY_DENIED): 3 flows")
    assert "[DISAGREEMENT]" in text and text.rstrip().endswith("4 groups, 6 dropped flows, 1 disagreements")
    proc = run_cli("explain", "--input-file", str(recording), "--cluster", str(STARWARS), "-o", "md")
    md = proc.stdout.decode()
    assert "| default/xwing | default/deathstar | 80/TCP | POLICY\\_DENIED | 3 | - | ingress | explained |" in md
    assert "**disagreement**" in md


def test_nothing_dropped_exits_3(tmp_path):
    path = tmp_path / "ok.jsonl"
    path.write_text(flow_line("tiefighter", "deathstar-7848d6c4d5-th9v2", verdict="FORWARDED") + "\n")
    proc = run_cli("explain", "--input-file", str(path), "--cluster", str(STARWARS), "-o", "json")
    assert proc.returncode == 3
    assert json.loads(proc.stdout)["groups"] == []


def test_the_recorded_cilium_docs_sample():
    sample = shared_or_skip("samples", "flows", "cilium-docs__hubble-exporter-output.jsonl")
    groups = diagnose(PolicyEngine(load_snapshot(STARWARS)), read_events(str(sample))).groups
    by_reason = {g.key.reason: g for g in groups}
    assert by_reason["POLICY_DENIED"].status == EXPLAINED
    assert by_reason["POLICY_DENIED"].key.dst == "default/deathstar"
    assert by_reason["INVALID_SOURCE_IP"].status == NOT_POLICY


def _explain_json(path: Path, cluster: Path, *extra: str):
    proc = run_cli("explain", "--input-file", str(path), "--cluster", str(cluster), "-o", "json", *extra)
    return proc.returncode, json.loads(proc.stdout), proc.stderr.decode()


def test_policy_drops_with_no_policy_in_the_state_are_incomplete(tmp_path):
    # A snapshot without its policies (kubectl get pods only) cannot explain Hubble's policy drops: Cilium
    # drops for policy only where a policy selects the endpoint, or with enable-policy=always.
    cluster = tmp_path / "cluster"
    cluster.mkdir()
    (cluster / "workloads.yaml").write_text((STARWARS / "workloads.yaml").read_text())
    path = tmp_path / "flows.jsonl"
    path.write_text(flow_line("xwing", "deathstar-7848d6c4d5-th9v2") + "\n")
    code, doc, err = _explain_json(path, cluster)
    assert code == 5 and doc["incomplete"] == ["Hubble reports 1 policy drop, yet the cluster state holds no "
                                               "NetworkPolicy, CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy"]
    assert doc["groups"][0]["status"] == "disagreement"
    assert "incomplete cluster state" in " ".join(doc["groups"][0]["trace"]["notes"])  # on the answer itself
    code, doc, _ = _explain_json(path, cluster, "--enforcement-mode", "always")  # default deny everywhere
    assert code == 0 and "incomplete" not in doc


def test_a_named_policy_the_state_holds_is_not_a_gap(tmp_path):
    path = tmp_path / "flows.jsonl"
    path.write_text(flow_line("xwing", "deathstar-7848d6c4d5-th9v2", ingress_denied_by=[
        {"name": "rule1", "namespace": "default", "kind": "CiliumNetworkPolicy"}]) + "\n")
    code, doc, err = _explain_json(path, STARWARS)
    assert code == 0 and "incomplete" not in doc and "incomplete" not in err
