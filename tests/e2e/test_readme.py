"""The README's own commands, run as written (with the demo's recording and snapshot in place of the
placeholder files): a README that drifts from the tool fails here, not in a reader's terminal."""

from __future__ import annotations

import re
import shlex

import pytest

from audit_mode import write_audit_twin
from cli_run import run_cli
from hubbletui import demo
from paths import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
# what needs a cluster, a terminal or a server that keeps running; each is exercised by its own e2e test
NOT_HERE = {"tui", "pick", "snapshot", "serve", "record", "demo"}


def commands() -> list[list[str]]:
    out = []
    for block in BLOCKS:
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line.startswith("hubbletui "):
                continue
            args = shlex.split(line.split(">", 1)[0])[1:]
            if args and args[0] not in NOT_HERE:
                out.append(args)
    return out


def with_demo_files(args: list[str], tmp_path) -> list[str]:
    fixes = tmp_path / "fixes.yaml"  # what the README's `suggest ... > fixes.yaml` wrote
    fixes.write_bytes(run_cli("demo", "--print-fixes").stdout)
    flows = demo.recording_path()
    if "AUDIT" in args:  # the audit-mode section's commands: the demo as recorded in audit mode
        flows = write_audit_twin(flows, tmp_path / "audit.jsonl")
    swap = {"flows.json": str(flows), "snapshot/": str(demo.cluster_path()),
            "fixes/": str(tmp_path / "fixes"), "fixes.yaml": str(fixes),
            "KIND/NS/NAME": "CiliumNetworkPolicy/database/default-deny"}
    return [swap.get(a, a) for a in args]


def test_the_readme_says_how_to_install_run_and_test():
    install, test = BLOCKS[0].strip(), BLOCKS[1].strip()
    assert install.endswith("pip install . && hubbletui demo")
    assert test == 'pip install -e ".[test]" && python -m pytest -q'
    assert "python -m pytest -q" in (ROOT / ".ci" / "run").read_text()  # CI runs the README's test command


@pytest.mark.parametrize("args", commands(), ids=lambda a: " ".join(a[:2]))
def test_a_readme_command_works_on_the_demo(args, tmp_path):
    done = run_cli(*with_demo_files(args, tmp_path), timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout or (tmp_path / "fixes").is_dir()
    assert b"Traceback" not in done.stderr
