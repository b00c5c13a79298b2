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
        "monitoring/prometheus -> database/fdb-exporter 9161/TCP (POLICY_DENIED at ingress, 24 dropped flows)",
        "world -> shop/cart 8080/TCP (POLICY_DENIED at ingress, 5 dropped flows)"]
    assert doc["fixes"][0]["dropped_flows"] == 24 and doc["unchanged"] > 30


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


def _after_state(tmp_path, source, edit):
    """A copy of the snapshot ``source`` (a folder or one file) with ``edit(objects)`` applied: the state as a
    pull request would leave it."""
    import yaml

    files = sorted(source.glob("*.yaml")) if source.is_dir() else [source]
    docs = [d for f in files for d in yaml.safe_load_all(f.read_text()) if d]
    items = [i for d in docs for i in (d.get("items", []) if d.get("kind", "").endswith("List") else [d])]
    after = tmp_path / "after"
    after.mkdir()
    (after / "state.yaml").write_text(yaml.safe_dump_all(edit(items)))
    return after


def test_after_a_snapshot_with_the_demo_fix_passes_like_the_change(tmp_path):
    import yaml

    fixes = [d for d in yaml.safe_load_all(run_cli("demo", "--print-fixes").stdout) if d]
    after = _after_state(tmp_path, DEMO / "cluster", lambda objs: objs + fixes)
    by_after = run_cli(*DEMO_ARGS, "--after", str(after), "-o", "json")
    assert by_after.returncode == 0, by_after.stderr
    (tmp_path / "fixes.yaml").write_text(yaml.safe_dump_all(fixes))
    by_change = run_cli(*DEMO_ARGS, "--change", str(tmp_path / "fixes.yaml"), "-o", "json")
    assert json.loads(by_after.stdout) == json.loads(by_change.stdout)


def test_after_a_snapshot_without_kube_dns_fails_and_lists_the_broken_flows(tmp_path):
    def no_dns(objs):
        return [o for o in objs if o["metadata"]["name"] != "allow-kube-dns"]

    result = run_cli(*DEMO_ARGS, "--after", str(_after_state(tmp_path, DEMO / "cluster", no_dns)), "-o", "junit")
    assert result.returncode == 6
    failed = [c for c in ET.fromstring(result.stdout).findall("testcase") if c.find("failure") is not None]
    assert failed and all("kube-system/coredns 53/UDP" in c.get("name") for c in failed)
    assert run_cli(*DEMO_ARGS, *NO_DNS, "-o", "junit").stdout == result.stdout


def test_after_a_scenario_state_that_fixes_and_one_that_breaks(tmp_path):
    """netpol-only: the state with suggest's new NetworkPolicy fixes admin -> reports; the state with
    api-allow-frontend gone breaks frontend -> api."""
    import yaml

    args = ("verify", "--input-file", str(NETPOL / "flows.jsonl"), "--cluster", str(NETPOL / "cluster.yaml"))
    new_policy = [d for d in yaml.safe_load_all(run_cli("suggest", *args[1:5]).stdout) if d]
    (tmp_path / "a").mkdir()
    fixed = _after_state(tmp_path / "a", NETPOL / "cluster.yaml", lambda objs: objs + new_policy)
    result = run_cli(*args, "--after", str(fixed), "-o", "json")
    assert result.returncode == 0, result.stderr
    assert [f["connection"].split(" (")[0] for f in json.loads(result.stdout)["fixes"]] == \
        ["web/admin -> web/reports 8080/TCP"]
    (tmp_path / "b").mkdir()
    broken = _after_state(tmp_path / "b", NETPOL / "cluster.yaml",
                          lambda objs: [o for o in objs if o["metadata"]["name"] != "api-allow-frontend"])
    result = run_cli(*args, "--after", str(broken), "-o", "md")
    assert result.returncode == 6
    md = result.stdout.decode()
    assert md.startswith("## hubbletui verify: ") and "| web/frontend -\\> web/api " in md
