"""`hubbletui suggest` as a user runs it: YAML for kubectl, JSON for programs, Markdown, files in a folder,
exit codes, and the same bytes for the same input."""

from __future__ import annotations

import json
import os

import yaml
from click.testing import CliRunner
from cli_run import run_cli
from suggest_support import SCENARIOS, scenario, validate_every_suggestion

from hubbletui.cli import cli

assert validate_every_suggestion  # autouse fixture: every suggestion below is schema-checked


def suggest(*args: str, input: bytes | None = None):
    """In this process; ``return_value`` is the exit code `hubbletui` would return."""
    return CliRunner().invoke(cli, ["suggest", *args], input=input, standalone_mode=False)


def test_yaml_stream_is_ready_for_kubectl_apply():
    cluster, flows = scenario("netpol-only")
    result = suggest("--input-file", str(flows), "--cluster", str(cluster))
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.stdout) if d is not None]
    # live: only the best fix of each group; the frontend's port fix is a patch (a comment), so one object
    assert [d["kind"] for d in docs] == ["NetworkPolicy"]
    assert docs[0]["metadata"]["name"] == "allow-admin-to-reports-8080-tcp-ingress"
    text = result.stdout
    assert "# fixes: web/frontend -> web/api 8443/TCP (POLICY_DENIED at ingress, 8 dropped flows)" in text
    assert "# blast radius: newly allows nothing else" in text
    assert ("#   kubectl patch networkpolicies.networking.k8s.io api-allow-frontend -n web --type=json -p "
            "'[{\"op\":\"add\",\"path\":\"/spec/ingress/0/ports/-\",\"value\":{\"port\":8443,\"protocol\":\"TCP\"}}]'"
            ) in text
    assert "# alternative 2 of 2 (new-policy, checked)" in text  # commented out: not applied by kubectl


def test_every_document_is_headed_by_what_it_fixes_and_its_blast_radius():
    cluster, flows = scenario("team-namespaces")
    result = suggest("--input-file", str(flows), "--cluster", str(cluster), "--top", "4")
    assert result.exit_code == 0
    documents = result.stdout.split("---\n")
    assert len(documents) == 4
    for doc in documents:
        lines = doc.splitlines()
        assert lines[0].startswith("# fixes: team-a/frontend -> team-b/api 8080/TCP")
        assert lines[2].startswith("# blast radius: ")


def test_json_form_per_group_explanation_and_checked_candidates():
    cluster, flows = scenario("label-regime")
    result = suggest("--input-file", str(flows), "--cluster", str(cluster), "-o", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["format"] == "cilium" and data["fixes"] == 1
    (group,) = data["groups"]
    assert (group["src"], group["dst"], group["port"], group["protocol"], group["reason"]) == \
        ("shop/billing", "shop/postgres", 5432, "TCP", "POLICY_DENIED")
    assert "isolated for egress" in group["explanation"]
    first = group["candidates"][0]
    assert result.return_value == 0
    assert first["kind"] == "label-change" and first["checked"] is True and first["rank"] == 1
    assert first["target"] == {"kind": "Deployment", "namespace": "shop", "name": "billing"}
    assert first["patch"]["type"] == "strategic" and first["yaml"] is None
    assert first["blast_radius"] == {"count": 0, "at_least": False, "pairs": []}
    for candidate in group["candidates"][1:]:
        assert candidate["kind"] in ("label-change", "rule-patch", "new-policy", "istio-authz")
        assert candidate["checked"] is True
        assert candidate["yaml"] or candidate["patch"]


def test_markdown_form():
    cluster, flows = scenario("istio-mesh")
    result = suggest("--input-file", str(flows), "--cluster", str(cluster), "-o", "md")
    assert result.exit_code == 0
    assert result.stdout.startswith("# Suggested fixes\n")
    assert "### Fix 1 (istio-authz): add principal cluster.local/ns/bank/sa/auditor" in result.stdout
    assert "```sh\nkubectl patch authorizationpolicies.security.istio.io ledger-allow -n bank" in result.stdout


def test_same_input_same_bytes():
    cluster, flows = scenario("team-namespaces")
    for output in ("yaml", "json", "md"):
        args = ("--input-file", str(flows), "--cluster", str(cluster), "-o", output, "--top", "5")
        assert suggest(*args).stdout_bytes == suggest(*args).stdout_bytes


def test_out_dir_one_file_per_fix_with_stable_names_and_an_index(tmp_path):
    cluster, flows = scenario("netpol-only")
    out = tmp_path / "fixes"
    result = suggest("--input-file", str(flows), "--cluster", str(cluster), "--out-dir", str(out))
    assert result.exit_code == 0
    names = sorted(os.listdir(out))
    assert names == [
        "index.md",
        "web.admin-web.reports-8080-tcp-policy_denied.1-new-policy.yaml".replace("_", "-"),
        "web.frontend-web.api-8443-tcp-policy-denied.1-rule-patch.yaml",
        "web.frontend-web.api-8443-tcp-policy-denied.2-new-policy.yaml",
    ]
    listed = result.stdout.splitlines()
    assert listed[-1] == str(out / "index.md") and sorted(listed) == sorted(str(out / n) for n in names)
    new = list(yaml.safe_load_all((out / names[1]).read_text()))
    assert [d["kind"] for d in new] == ["NetworkPolicy"]
    # an alternative is live in its own file: the folder is for choosing
    assert [d["kind"] for d in yaml.safe_load_all((out / names[3]).read_text()) if d] == ["NetworkPolicy"]
    index = (out / "index.md").read_text()
    assert all(n in index for n in names[1:])
    first = {n: (out / n).read_bytes() for n in names}
    again = suggest("--input-file", str(flows), "--cluster", str(cluster), "--out-dir", str(out))
    assert again.exit_code == 0
    assert {n: (out / n).read_bytes() for n in sorted(os.listdir(out))} == first  # no temporary files left


def test_nothing_to_fix_exits_3(tmp_path):
    cluster, flows = scenario("label-regime")
    forwarded = b"".join(line + b"\n" for line in flows.read_bytes().splitlines() if b'"DROPPED"' not in line)
    result = suggest("--input-file", "-", "--cluster", str(cluster), input=forwarded)
    assert result.exit_code == 0 and result.return_value == 3
    assert result.stdout == ""


def test_exit_codes_from_the_real_entry_point(tmp_path):
    cluster, flows = scenario("istio-mesh")
    done = run_cli("suggest", "--input-file", str(flows), "--cluster", str(cluster))
    assert done.returncode == 0 and b"kubectl patch authorizationpolicies" in done.stdout
    missing = run_cli("suggest", "--input-file", str(tmp_path / "nope.jsonl"), "--cluster", str(cluster))
    assert missing.returncode == 1 and missing.stdout == b""
    assert missing.stderr.decode().count("\n") == 1
    none = run_cli("suggest", "--input-file", str(flows), "--cluster", str(SCENARIOS / "label-regime"))
    assert none.returncode == 3 and none.stdout == b""


def test_server_mode_reads_the_flows_over_grpc(tmp_path):
    from grpc_support import ServerThread

    from hubbletui.flows.recording import read_events
    from hubbletui.server.playlist import Playlist

    cluster, flows = scenario("label-regime")
    with ServerThread(Playlist.from_events(read_events(str(flows)), "label-regime"), speed=None) as server:
        over_grpc = suggest("--server", server.address, "--cluster", str(cluster), "-o", "json")
    from_file = suggest("--input-file", str(flows), "--cluster", str(cluster), "-o", "json")
    assert over_grpc.return_value == 0
    assert over_grpc.stdout == from_file.stdout
