"""`hubbletui tui|pick|demo` before the TUI starts: flag errors as one line, and where the cluster comes from
(given, live by default when a kubeconfig is there, else flows only with a note saying what is missing)."""

from __future__ import annotations

import pytest

from cli_run import run_cli
from hubbletui.cli.cluster_options import ClusterFlags
from hubbletui.cli.tui_cmd import _cluster_for_tui
from hubbletui.errors import ExitCode, HubbleTuiError


@pytest.mark.parametrize("args, message", [
    (["tui", "--server", "localhost:4245", "--speed", "2"], "--speed goes with --input-file"),
    (["tui", "--input-file", "f.json", "--server", "localhost:4245"], "not both"),
    (["tui", "--input-file", "f.json", "--speed", "0"], "the speed must be positive"),
    (["demo", "--speed", "-1"], "the speed must be positive"),
    (["tui", "--cluster", ".", "--live", "--input-file", "f.json"], "either --cluster PATH or --live"),
])
def test_flag_errors_are_one_line(args, message):
    result = run_cli(*args, env={"KUBECONFIG": "/nonexistent"}, timeout=30)
    err = result.stderr.decode()
    assert result.returncode in (ExitCode.ERROR, ExitCode.USAGE), err
    assert message in err and "Traceback" not in err


def test_a_missing_recording_is_one_line(tmp_path):
    result = run_cli("tui", "--input-file", str(tmp_path / "nope.json"), "--cluster", str(tmp_path),
                     env={"KUBECONFIG": "/nonexistent"}, timeout=30)
    assert result.returncode == ExitCode.ERROR
    assert result.stderr.decode().strip().endswith("nope.json: no such file")


def test_without_a_kubeconfig_flows_only_with_a_note(monkeypatch):
    monkeypatch.setenv("KUBECONFIG", "/nonexistent")
    monkeypatch.setenv("HOME", "/nonexistent-home")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    state, notes = _cluster_for_tui(ClusterFlags())
    assert state is None and "flows only" in notes[0] and "--cluster" in notes[0]


def test_an_unreachable_default_cluster_is_a_note_but_an_asked_for_one_an_error(tmp_path, monkeypatch):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("""apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
""")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    state, notes = _cluster_for_tui(ClusterFlags())
    assert state is None and "reading the cluster from the kubeconfig failed" in notes[0]
    with pytest.raises(HubbleTuiError):
        _cluster_for_tui(ClusterFlags(live=True))


@pytest.mark.parametrize("args, message", [
    (["verfiy", "--help"], "No such command 'verfiy'. Did you mean 'verify'?"),
    (["obsrve"], "No such command 'obsrve'. (Did you mean one of: 'observe', 'serve'?)"),
    (["foo"], "No such command 'foo'."),
])
def test_an_unknown_command_is_a_usage_error(args, message):
    result = run_cli(*args, timeout=30)
    assert result.returncode == ExitCode.USAGE
    assert message in result.stderr.decode() and result.stdout == b""


def test_options_without_a_command_still_mean_the_tui():
    result = run_cli("--speed", "2", "--help", timeout=30)
    assert result.returncode == ExitCode.OK
    assert result.stdout.decode().startswith("Usage: hubbletui tui")
