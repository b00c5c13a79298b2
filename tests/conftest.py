"""Shared test helpers: where ../shared is, and running the CLI as a user would (a real subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SAMPLES = SHARED / "samples" / "flows"


def shared_or_skip(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not here (the team's shared reference folder sits beside the repo in CI)")
    return path


def run_cli(*args: str, input: bytes | None = None, env: dict | None = None, timeout: float = 60):
    """Run `hubbletui ARGS` in a subprocess; returns CompletedProcess with bytes stdout/stderr."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "HUBBLE_SERVER")}
    full_env.update({"TZ": "UTC", **(env or {})})
    return subprocess.run([sys.executable, "-m", "hubbletui", *args], input=input, capture_output=True,
                          env=full_env, timeout=timeout, cwd=ROOT)


@pytest.fixture
def samples_dir() -> Path:
    return shared_or_skip("samples", "flows")
