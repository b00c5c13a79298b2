"""Fixtures every room of the suite shares. Helpers live in tests/support/ (on the path: `from paths import
ROOT`, `from cli_run import run_cli`); the suite's rooms are unit/ (one module at a time, in process), tui/
(the Textual app under its pilot) and e2e/ (real subprocesses, sockets, terminals and servers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from paths import shared_or_skip


@pytest.fixture
def samples_dir() -> Path:
    return shared_or_skip("samples", "flows")


@pytest.fixture(scope="session")
def kube_server():
    """The real kube-apiserver + etcd of ../shared/kube, one per session (skipped with the reason without it)."""
    import shutil

    from kube_server import kube_server_or_skip

    server = kube_server_or_skip()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.state, ignore_errors=True)
