"""`hubbletui demo` and `hubbletui pick` in a real terminal (tmux): the screen is read back as text while keys
are typed, the way a person would use it."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from paths import ROOT
from hubbletui import demo
from tui_support import OLD_EXPORTER

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Terminal:
    """One tmux session on a private server socket, 150x45 unless told."""

    def __init__(self, command: str, env: dict[str, str], width: int = 150):
        self.socket = f"hubbletui-test-{uuid.uuid4().hex[:8]}"
        self.session = "t"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        # COLUMNS and LINES unset: pytest-xdist workers carry them (80x25), and Textual would believe them over
        # the terminal's own size
        self._tmux("-f", "/dev/null", "new-session", "-d", "-s", self.session, "-x", str(width), "-y", "45",
                   f"cd {shlex.quote(str(ROOT))} && env -u COLUMNS -u LINES {exports} {command}; sleep 30")

    def _tmux(self, *args: str) -> str:
        # -u and a UTF-8 locale: tmux must count "→" and "━" as one column each, as the app does
        env = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        return subprocess.run(["tmux", "-u", "-L", self.socket, *args], capture_output=True, encoding="utf-8",
                              check=True, timeout=10, env=env).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.session)

    def keys(self, *keys: str) -> None:
        for key in keys:
            self._tmux("send-keys", "-t", self.session, key)
            time.sleep(0.15)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        size = self._tmux("display-message", "-p", "-t", self.session, "#{window_width}x#{window_height}")
        raise AssertionError(f"{text!r} never appeared; the {size.strip()} screen was:\n{screen}")

    def close(self) -> None:
        subprocess.run(["tmux", "-u", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


def _env() -> dict[str, str]:
    return {"TERM": "xterm-256color", "TZ": "UTC", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "KUBECONFIG": "/nonexistent",
            "TEXTUAL_ANIMATIONS": "none"}


@pytest.fixture
def terminal():
    opened: list[Terminal] = []

    def open_terminal(command: str, width: int = 150) -> Terminal:
        term = Terminal(command, _env(), width)
        opened.append(term)
        return term

    yield open_terminal
    for term in opened:
        term.close()


def test_demo_in_a_real_terminal(terminal, tmp_path):
    done = tmp_path / "exit-code"
    term = terminal(f"{shlex.quote(sys.executable)} -m hubbletui demo --speed 20; echo $? > {done}")
    term.wait_for(OLD_EXPORTER.split("/")[1])
    term.wait_for("Drops by pod")
    term.wait_for("gRPC replay 127.0.0.1:")
    term.wait_for("CrashLoopBackOff")
    term.keys("2")
    term.wait_for("DESTINATION")
    term.keys("?")
    term.wait_for("hubbletui keys")
    term.keys("Escape", "/", "p", "r", "o", "m", "Enter", "1")
    term.wait_for("filter prom")
    screen = term.wait_for("prometheus-0")
    assert OLD_EXPORTER.split("/")[1] not in screen
    term.keys("Space")
    term.wait_for("PAUSED")
    term.keys("q")
    deadline = time.monotonic() + 10
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert done.read_text().strip() == "0"


def test_the_demos_three_stages_resolve_one_after_another(terminal):
    """The demo is a bundle: as the replay passes each fix, the pod whose drops it ended is marked resolved
    with the fix's time (the RESOLVED column is the table's last: a wide terminal shows it)."""
    term = terminal(f"{shlex.quote(sys.executable)} -m hubbletui demo --speed 15", width=175)
    old = OLD_EXPORTER.split("/")[1]
    term.wait_for("CrashLoopBackOff")
    stages = []
    deadline = time.monotonic() + 60
    while len(stages) < 3 and time.monotonic() < deadline:
        for line in term.screen().splitlines():
            for pod, stamp in ((old, "23:02:08"), ("fdb-exporter-l5lzwntqmg", "23:03:00"), ("prometheus-0", "23:03:53")):
                if pod in line and line.rstrip().endswith(stamp) and stamp not in stages:
                    stages.append(stamp)
        time.sleep(0.2)
    assert stages == ["23:02:08", "23:03:00", "23:03:53"], term.screen()
    assert "deleted 23:02:28" in term.screen()  # the crashlooping pod, gone with the rollout
    term.keys("3")
    screen = term.wait_for("resolved monitoring/prometheus → database/fdb-expo")
    assert "allow-prometheus-scrape" in screen and "foundationdb-allow-clients" in screen
    term.keys("q")


def test_pick_draws_on_the_terminal_and_writes_the_marked_fix_to_stdout(terminal, tmp_path):
    out, done = tmp_path / "fixes.yaml", tmp_path / "exit-code"
    command = (f"{shlex.quote(sys.executable)} -m hubbletui pick --input-file {demo.recording_path()} "
               f"--cluster {demo.cluster_path()} > {out}; echo $? > {done}")
    term = terminal(command)
    term.wait_for(OLD_EXPORTER.split("/")[1])
    term.keys("Enter")
    term.wait_for("label-change")
    term.keys("m")
    term.wait_for("☑")
    term.keys("Escape", "q")
    deadline = time.monotonic() + 10
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert done.read_text().strip() == "0"
    fixes = out.read_text()
    assert "label-change, checked" in fixes and "fdb-client" in fixes
    assert "\x1b" not in fixes  # the TUI drew elsewhere: stdout holds only the YAML
