"""The house rules that code review alone does not hold: imports run down the layers (the import-linter
contracts in pyproject.toml), and the headless commands never load Textual or Rich, checked in a fresh process
running the real command on the built-in demo."""

from __future__ import annotations

import subprocess
import sys

import pytest

from paths import ROOT
from hubbletui import demo

# Run a command as `hubbletui ARGS...` does, then say on stderr whether a TUI library got loaded.
PROBE = """
import atexit, sys
def report():
    loaded = sorted({m.split('.')[0] for m in sys.modules} & {'textual', 'rich'})
    sys.stderr.write('LOADED:' + ','.join(loaded) + '\\n')
atexit.register(report)
sys.argv = ['hubbletui', *sys.argv[1:]]
from hubbletui.cli import run
run()
"""


def test_import_contracts_hold():
    done = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                           "lint_imports_command()"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


RECORDING, CLUSTER = str(demo.recording_path()), str(demo.cluster_path())
HEADLESS = {
    "explain": ["explain", "--input-file", RECORDING, "--cluster", CLUSTER, "-o", "json"],
    "suggest": ["suggest", "--input-file", RECORDING, "--cluster", CLUSTER, "-o", "json"],
    "trace": ["trace", "--cluster", CLUSTER, "--src", "monitoring/prometheus", "--dst", "database/fdb-exporter",
              "--dport", "9161/tcp", "-o", "json"],
    "observe": ["observe", "--input-file", RECORDING, "-o", "compact"],
    "snapshot": ["snapshot", "--help"],
    "serve": ["serve", "--help"],
    "record": ["record", "--help"],
}


@pytest.mark.parametrize("name", sorted(HEADLESS))
def test_headless_commands_never_load_textual(name):
    done = subprocess.run([sys.executable, "-c", PROBE, *HEADLESS[name]], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode in (0, 3), done.stderr[-2000:]  # 3: nothing to fix is fine here
    assert done.stdout, f"{name} printed nothing: {done.stderr[-2000:]}"
    assert "LOADED:\n" in done.stderr, done.stderr[-500:]
