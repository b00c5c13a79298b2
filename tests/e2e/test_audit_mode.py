"""Policy audit mode end to end: a recording taken with `policy-audit-mode` on (its drops are AUDIT policy
verdicts, each followed by the packet's delivery) is explained, fixed and picked as its enforcing twin is, and
every report says which groups are audit."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import time

import pytest
from audit_mode import write_audit_twin
from cli_run import run_cli
from paths import ROOT

DEMO = ROOT / "hubbletui" / "demo"
SCENARIOS = ROOT / "tests" / "fixtures" / "scenarios"
CASES = {"demo": (DEMO / "flows.jsonl", DEMO / "cluster"),
         "label-regime": (SCENARIOS / "label-regime" / "flows.jsonl", SCENARIOS / "label-regime" / "cluster.yaml"),
         "netpol-only": (SCENARIOS / "netpol-only" / "flows.jsonl", SCENARIOS / "netpol-only" / "cluster.yaml")}


def _fixes(doc: dict) -> dict:
    """Each policy group's checked fixes, by connection: the changes themselves, not their wording."""
    return {(g["src"], g["dst"], g["port"], g["protocol"], g["layer"]): [c["changes"] for c in g["candidates"]]
            for g in doc["groups"] if g["layer"] != "istio"}


@pytest.mark.parametrize("case", list(CASES))
def test_an_audit_mode_recording_gets_the_fixes_of_its_enforcing_twin(case, tmp_path):
    flows, cluster = CASES[case]
    audit = write_audit_twin(flows, tmp_path / "audit.jsonl")
    assert '"verdict":"AUDIT"' in audit.read_text() and '"POLICY_DENIED"' not in audit.read_text()
    enforcing = run_cli("suggest", "--input-file", str(flows), "--cluster", str(cluster), "-o", "json")
    audited = run_cli("suggest", "--input-file", str(audit), "--cluster", str(cluster), "-o", "json")
    assert enforcing.returncode == audited.returncode == 0, audited.stderr
    before, after = json.loads(enforcing.stdout), json.loads(audited.stdout)
    assert _fixes(after) == _fixes(before) and _fixes(before)
    policy_groups = [g for g in after["groups"] if g["layer"] != "istio"]
    assert all(g["audit"] for g in policy_groups)
    assert all(not g["audit"] for g in before["groups"])
    assert all("audited flows that enforcing drops" in c["fixes"] for g in policy_groups for c in g["candidates"])


def test_verdict_audit_selects_the_audited_drops(tmp_path):
    audit = write_audit_twin(DEMO / "flows.jsonl", tmp_path / "audit.jsonl")
    args = ("--input-file", str(audit), "--cluster", str(DEMO / "cluster"))
    doc = json.loads(run_cli("explain", *args, "--verdict", "AUDIT", "-o", "json").stdout)
    groups = [(g["src"], g["dst"], g["port"], g["reason"]) for g in doc["groups"]]
    assert groups == [("database/fdb-exporter", "database/foundationdb", 4500, "POLICY_DENIED"),
                      ("monitoring/prometheus", "database/fdb-exporter", 9161, "POLICY_DENIED"),
                      ("world", "shop/cart", 8080, "POLICY_DENIED"),
                      ("database/fdb-backup", "world", 80, "POLICY_DENY")]  # a deny rule named: POLICY_DENY
    assert all(g["audit"] and g["status"] == "explained" and g["audited_flows"] == g["flows"] for g in doc["groups"])
    assert doc["audited"] == doc["drops"] == 152
    # Hubble's own word: DROPPED is not AUDIT, so only the drops audit mode does not touch are left
    dropped = json.loads(run_cli("explain", *args, "--verdict", "DROPPED", "-o", "json").stdout)
    assert dropped["audited"] == 0 and {g["reason"] for g in dropped["groups"]} == \
        {"STALE_OR_UNROUTABLE_IP", "CT_MAP_INSERTION_FAILED"}
    suggest = run_cli("suggest", *args, "--verdict", "AUDIT", "-o", "json")
    assert suggest.returncode == 0
    assert {(g["src"], g["port"]) for g in json.loads(suggest.stdout)["groups"]} == \
        {("database/fdb-exporter", 4500), ("monitoring/prometheus", 9161), ("world", 8080), ("database/fdb-backup", 80)}


def test_text_and_markdown_mark_audit_groups(tmp_path):
    audit = write_audit_twin(DEMO / "flows.jsonl", tmp_path / "audit.jsonl")
    args = ("--input-file", str(audit), "--cluster", str(DEMO / "cluster"))
    text = run_cli("explain", *args, "-o", "text").stdout.decode()
    head = next(line for line in text.splitlines() if line.startswith("monitoring/prometheus -> database/fdb-exporter"))
    assert head.endswith("[AUDIT]")
    assert "  audited (enforcing drops it) at ingress" in text
    assert "(152 audited: passed in audit mode, enforcing drops them)" in text.splitlines()[-1]
    md = run_cli("explain", *args, "-o", "md").stdout.decode()
    assert "| reason | flows | audit | layer |" in md
    assert "| POLICY\\_DENIED | 24 | yes | ingress |" in md and "| CT\\_MAP\\_INSERTION\\_FAILED | 2 | - |" in md


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_pick_on_an_audit_recording_shows_audit_and_writes_the_fix(tmp_path):
    from test_tui_terminal import Terminal, _env

    audit = write_audit_twin(DEMO / "flows.jsonl", tmp_path / "audit.jsonl")
    out, done = tmp_path / "fixes.yaml", tmp_path / "exit-code"
    term = Terminal(f"{shlex.quote(sys.executable)} -m hubbletui pick --input-file {audit} "
                    f"--cluster {DEMO / 'cluster'} > {out}; echo $? > {done}", _env())
    try:
        screen = term.wait_for("audit ×24")  # the pods panel: prometheus-0's drops are audited ones
        assert "fdb-exporter" in screen and "prometheus-0" in screen
        term.keys("Enter")
        screen = term.wait_for("label-change")
        assert "AUDIT       POLICY_DENIED" in screen and "Hubble: AUDIT POLICY_DENIED (policy audit mode passed it" in screen
        term.keys("m")
        term.wait_for("☑")
        term.keys("Escape", "q")
        deadline = time.monotonic() + 10
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        term.close()
    assert done.read_text().strip() == "0"
    fixes = out.read_text()
    assert "label-change, checked" in fixes and "fdb-client" in fixes

