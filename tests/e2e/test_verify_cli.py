"""`hubbletui verify` end to end through the real entry point: the demo's fix passes and lists the drops it
fixes; removing the kube-dns allowance fails with the broken flows; a built scenario's fix; every output form."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from cli_run import run_cli
from paths import ROOT

DEMO = ROOT / "hubbletui" / "demo"
NETPOL = ROOT / "tests" / "fixtures" / "scenarios" / "netpol-only"
DEMO_ARGS = ("verify", "--input-file", str(DEMO / "flows.jsonl"), "--cluster", str(DEMO / "cluster"))
NO_DNS = ("--delete", "CiliumClusterwideNetworkPolicy/allow-kube-dns")


def test_the_demo_fix_passes_and_lists_the_drops_it_fixes(tmp_path):
    fixes = tmp_path / "fixes.yaml"
    fixes.write_bytes(run_cli("demo", "--print-fixes").stdout)
    result = run_cli(*DEMO_ARGS, "--change", str(fixes), "-o", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["breaks"] == []
    # The demo's fixes: the scrape drop the story is about, and the world drops a /32 fromCIDR rule admits.
    assert [f["connection"] for f in doc["fixes"]] == [
        "monitoring/prometheus -> database/fdb-exporter 9161/TCP (POLICY_DENIED at ingress, 34 dropped flows)",
        "world -> shop/cart 8080/TCP (POLICY_DENIED at ingress, 5 dropped flows)"]
    assert doc["fixes"][0]["dropped_flows"] == 34 and doc["unchanged"] > 30


def test_removing_the_kube_dns_allowance_fails_with_the_broken_flows():
    result = run_cli(*DEMO_ARGS, *NO_DNS)
    assert result.returncode == 6
    text = result.stdout.decode()
    broken = [line for line in text.splitlines() if line.startswith("BREAKS  ")]
    assert broken and all(" -> kube-system/coredns 53/UDP: denied at egress: " in line for line in broken)
    assert any(line.startswith("BREAKS  shop/checkout -> kube-system/coredns 53/UDP") for line in broken)
    assert text.splitlines()[-1].startswith(f"{len(broken)} would break, 0 fixed, ")


def test_junit_and_markdown_for_ci():
    junit = run_cli(*DEMO_ARGS, *NO_DNS, "-o", "junit")
    assert junit.returncode == 6
    suite = ET.fromstring(junit.stdout)
    cases = suite.findall("testcase")
    failed = [c for c in cases if c.find("failure") is not None]
    assert int(suite.get("tests")) == len(cases) > len(failed) == int(suite.get("failures")) > 0
    assert all("kube-system/coredns 53/UDP" in c.get("name") for c in failed)
    md = run_cli(*DEMO_ARGS, *NO_DNS, "-o", "md").stdout.decode()
    assert md.startswith(f"## hubbletui verify: {len(failed)} connection(s) break\n")
    assert "| breaks | why |" in md and "-\\> kube-system/coredns 53/UDP |" in md


def test_a_scenario_fix_from_suggest_fixes_its_drops_and_breaks_nothing(tmp_path):
    args = ("--input-file", str(NETPOL / "flows.jsonl"), "--cluster", str(NETPOL / "cluster.yaml"))
    new_policy = tmp_path / "fix.yaml"
    new_policy.write_bytes(run_cli("suggest", *args).stdout)  # the new NetworkPolicy (the patch is on stderr)
    result = run_cli("verify", *args, "--change", str(new_policy), "-o", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [f["connection"].split(" (")[0] for f in doc["fixes"]] == ["web/admin -> web/reports 8080/TCP"]


def test_a_change_that_replaces_a_policy_with_a_narrower_one_breaks(tmp_path):
    """The frontend's allowance narrowed to a port it does not use: its working connections break."""
    import yaml

    docs = [d for d in yaml.safe_load_all((NETPOL / "cluster.yaml").read_text()) if d]
    policy = next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "api-allow-frontend")
    for rule in policy["spec"]["ingress"]:
        rule["ports"] = [{"port": 1, "protocol": "TCP"}]
    change = tmp_path / "narrower.yaml"
    change.write_text(yaml.safe_dump(policy))
    result = run_cli("verify", "--input-file", str(NETPOL / "flows.jsonl"), "--cluster", str(NETPOL / "cluster.yaml"),
                     "--change", str(change))
    assert result.returncode == 6
    assert "BREAKS  web/frontend -> web/api " in result.stdout.decode()


def test_errors_are_one_line_and_exit_1_or_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [unclosed\n")
    result = run_cli(*DEMO_ARGS, "--change", str(bad))
    assert result.returncode == 1
    assert result.stderr.decode().startswith(f"hubbletui: --change {bad}: not readable YAML")
    assert run_cli(*DEMO_ARGS).returncode == 2  # no change given
    assert run_cli(*DEMO_ARGS, "--delete", "a/b/c/d").returncode == 2
