"""Running the CLI as a user would: a real subprocess, in the repository, with UTC times."""

from __future__ import annotations

import os
import subprocess
import sys

from paths import ROOT


def run_cli(*args: str, input: bytes | None = None, env: dict | None = None, timeout: float = 60):
    """Run `hubbletui ARGS` in a subprocess; returns CompletedProcess with bytes stdout/stderr."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "HUBBLE_SERVER")}
    full_env.update({"TZ": "UTC", **(env or {})})
    return subprocess.run([sys.executable, "-m", "hubbletui", *args], input=input, capture_output=True,
                          env=full_env, timeout=timeout, cwd=ROOT)
