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
