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
    """One tmux session on a private server socket, 150x45."""

    def __init__(self, command: str, env: dict[str, str]):
        self.socket = f"hubbletui-test-{uuid.uuid4().hex[:8]}"
        self.session = "t"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        # COLUMNS and LINES unset: pytest-xdist workers carry them (80x25), and Textual would believe them over
        # the terminal's own size
        self._tmux("-f", "/dev/null", "new-session", "-d", "-s", self.session, "-x", "150", "-y", "45",
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

    def open_terminal(command: str) -> Terminal:
        term = Terminal(command, _env())
        opened.append(term)
        return term

    yield open_terminal
    for term in opened:
        term.close()


def test_demo_in_a_real_terminal(terminal, tmp_path):
    done = tmp_path / "exit-code"
    term = terminal(f"{shlex.quote(sys.executable)} -m hubbletui demo --speed 60; echo $? > {done}")
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
