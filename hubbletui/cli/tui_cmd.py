"""`hubbletui tui`, `hubbletui pick` and `hubbletui demo`: the commands that open the TUI.

Textual is imported only once a TUI is really about to run (`demo --print-fixes` stays headless).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hubbletui.cli.cluster_options import (ClusterFlags, EngineFlags, build_engine, cluster_options, engine_options,
                                           flow_namespaces, report_load)
from hubbletui.cli.flags import split
from hubbletui.cli.input_options import InputFlags, bundle_option, load_input
from hubbletui.cli.flow_options import (FilterOrderCommand, ServerFlags, TimeFlags, build_query, filter_options, require_one_source,
                                        server_options, time_options)
from hubbletui.cluster.bundle import CLUSTER, FLOWS, load_bundle
from hubbletui.cluster.model import ClusterState
from hubbletui.errors import ExitCode, HubbleTuiError
from hubbletui.flows.request import FilterSpec, FlowQuery

if TYPE_CHECKING:  # the fix modules load only when a TUI runs
    from hubbletui.suggest.model import GroupFixes, Suggestion

    Picked = tuple[GroupFixes, Suggestion]  # a fix marked in `pick`: its group and the chosen suggestion

SERVER_HISTORY = 10_000  # flows a live TUI asks the server for before following (its recent buffer)
DEMO_SPEED = 5.0
_NO_KUBECONFIG = ("flows only: no cluster (no --cluster PATH, and no kubeconfig for --live), so pod status, "
                  "explanations, fixes and mesh refusals are missing")


def _tui_options(func):
    func = click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Where `w` writes fixes (default: the current folder).")(func)
    func = engine_options(func)
    func = cluster_options(func)
    func = time_options(func)
    func = filter_options(func, exclude=("--cluster",))
    func = server_options(func)
    func = click.option("--speed", type=float, default=None, metavar="X",
                        help="With --input-file: replay at X times the recorded pace (1 = real time); "
                             "without it the recording is read as fast as it loads.")(func)
    func = bundle_option(func)
    func = click.option("--input-file", metavar="FILE|-", help="Replay a jsonpb recording (.gz ok; - for stdin).")(func)
    return func


@click.command(cls=FilterOrderCommand, context_settings={"help_option_names": ["-h", "--help"]})
@_tui_options
def tui(**kwargs) -> int:
    """Open the TUI on a Hubble server (live) or a recording (replay).

    \b
      hubbletui --server localhost:4245 --live
      hubbletui --input-file incident.json --speed 10 --cluster snapshot/

    The cluster is read live by default when a kubeconfig is there; flows alone work without one.
    """
    _run(kwargs, pick=False)
    return ExitCode.OK


@click.command(cls=FilterOrderCommand, context_settings={"help_option_names": ["-h", "--help"]})
@_tui_options
def pick(**kwargs) -> int:
    """Open the TUI; mark fixes with `m`; on quit, write the marked fixes to stdout as YAML.

    \b
      hubbletui pick --input-file incident.json --cluster snapshot/ > fixes.yaml

    The TUI draws on the terminal (/dev/tty) while stdout goes to the file. Exit code 3 when nothing was marked.
    """
    picked = _run(kwargs, pick=True)
    if not picked:
        click.echo("hubbletui: no fix was marked; nothing written", err=True)
        return ExitCode.NOTHING_TO_FIX
    _write_picked(picked)
    return ExitCode.OK


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--speed", type=float, default=DEMO_SPEED, show_default=True, metavar="X",
              help="Replay speed of the scenario (1 = its real pace, about 4.5 minutes).")
@click.option("--loop", is_flag=True, help="Play the scenario again and again.")
@click.option("--print-fixes", is_flag=True, help="No TUI: print the scenario's fixes (YAML) and exit.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where `w` writes fixes (default: the current folder).")
def demo(speed: float, loop: bool, print_fixes: bool, out_dir: Path | None) -> int:
    """The built-in FoundationDB-exporter scenario, no cluster and no network needed.

    Our own replay server serves the scenario's recording on a loopback port and the TUI reads it over gRPC,
    the same path as a live relay; the policy side reads the scenario's cluster and the changes made to it as
    the story goes (an incident bundle), so each drop is judged by the state at its time.
    """
    if speed <= 0:
        raise click.BadParameter("the speed must be positive", param_hint="--speed")
    folder = _demo_folder()
    if print_fixes:  # the fixes the story applies, found from its starting state
        return _print_demo_fixes(folder / FLOWS, folder / CLUSTER)
    from hubbletui.server.playlist import Playlist
    from hubbletui.sources.loopback import LoopbackReplaySource

    scenario = load_bundle(folder)
    report_load(scenario.state)
    playlist = Playlist.load(scenario.flows, _say)
    source = LoopbackReplaySource(playlist, speed=speed, loop=loop, name="demo")
    from hubbletui.demo import CLUSTER_NAME

    engine = build_engine(EngineFlags(cluster_name=CLUSTER_NAME), scenario.state)
    _launch(source, scenario.state, engine, notes=(), out_dir=out_dir, pick=False, timeline=scenario.timeline)
    return ExitCode.OK


# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TuiFlags:
    """The flags of ``_tui_options`` that are the TUI's own."""

    input_file: str | None = None
    input_dir: str | None = None  # a bundle
    server: str | None = None
    speed: float | None = None
    out_dir: Path | None = None


def _run(kwargs: dict, *, pick: bool) -> list[Picked]:
    own, filters, times, server_flags, cluster, engine_flags = split(
        kwargs, TuiFlags, FilterSpec, TimeFlags, ServerFlags, ClusterFlags, EngineFlags)
    server, speed, out_dir = own.server, own.speed, own.out_dir
    loaded = load_input(InputFlags(own.input_dir, own.input_file), cluster, required=False) if own.input_dir \
        else None
    input_file = loaded.flows if loaded is not None else own.input_file
    require_one_source(input_file, server)
    if speed is not None and speed <= 0:
        raise click.BadParameter("the speed must be positive", param_hint="--speed")
    if speed is not None and not input_file:
        raise click.BadParameter("--speed goes with --input-file (a live server has its own pace)",
                                 param_hint="--speed")
    if input_file == "-" and not pick and sys.stdin.isatty():
        raise click.BadParameter("--input-file - reads stdin, which is the terminal here", param_hint="--input-file")
    from hubbletui.tui.feed import Reports

    reports = Reports()
    state, notes = (loaded.state, ()) if loaded is not None \
        else _cluster_for_tui(cluster.reading(flow_namespaces(filters)))
    engine = build_engine(engine_flags, state, follow=state.source.startswith("live")) if state is not None else None
    timeline = loaded.timeline if loaded is not None else None
    if input_file:
        query = build_query(filters, times)
        source = _recording_source(input_file, speed, query, reports)
    else:
        query = build_query(filters, times, follow=True)
        if query.since_ns is None and not query.number:
            query.number = SERVER_HISTORY
        source = _grpc_source(server, server_flags, query)
    try:
        return _launch(source, state, engine, notes=notes, out_dir=out_dir, pick=pick, reports=reports,
                       timeline=timeline)
    finally:
        if state is not None:
            state.stop()


def _launch(source, state: ClusterState | None, engine, *, notes, out_dir: Path | None, pick: bool,
            reports=None, timeline=None) -> list[Picked]:
    from hubbletui.tui.app import create_app, prepare_process
    from hubbletui.tui.tty_driver import TtyDriver, needs_tty_driver

    driver = {}
    if needs_tty_driver():
        if not os.path.exists("/dev/tty"):
            raise HubbleTuiError("no terminal to draw on: the TUI needs one (stdin, stderr or /dev/tty)")
        driver = {"driver_class": TtyDriver}
    app = create_app(source, cluster=state, engine=engine, notes=notes, out_dir=out_dir, pick=pick,
                     reports=reports, timeline=timeline, **driver)
    prepare_process()
    result = app.run()
    if app.return_code not in (None, 0):
        raise HubbleTuiError("the TUI stopped on an error (shown above)")
    return list(result or [])


def _recording_source(path: str, speed: float | None, query: FlowQuery, reports):
    from hubbletui.sources.recording_source import RecordingSource

    if path != "-" and not os.path.exists(path):
        raise HubbleTuiError(f"{path}: no such file")
    return RecordingSource(path, speed=speed, query=query, report=reports)


def _grpc_source(server: str | None, flags: ServerFlags, query: FlowQuery):
    from hubbletui.sources.grpc_client import GrpcSource

    options = flags.dial_options(server)
    return GrpcSource(options, query)


def _kubeconfig_available() -> bool:
    paths = [p for p in (os.environ.get("KUBECONFIG") or "").split(os.pathsep) if p]
    if any(os.path.exists(os.path.expanduser(p)) for p in paths):
        return True
    return os.path.exists(os.path.expanduser("~/.kube/config")) or bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def _cluster_for_tui(flags: ClusterFlags) -> tuple[ClusterState | None, tuple[str, ...]]:
    """--cluster or --live as asked (failing loudly); otherwise live when a kubeconfig is there, and when that
    fails, flows only with a note saying why."""
    paths, live, context, kubeconfig = flags.cluster, flags.live, flags.context, flags.kubeconfig
    if paths:
        return _load_snapshot(list(paths)), ()
    if not live and not _kubeconfig_available():
        return None, (_NO_KUBECONFIG,)
    from hubbletui.cluster.live import load_live

    _say("reading the cluster (get/list/watch only)…")
    try:
        state = load_live(context=context, kubeconfig=kubeconfig, watch=True, namespaces=flags.namespaces)
    except HubbleTuiError as exc:
        if live:
            raise
        return None, (f"flows only: reading the cluster from the kubeconfig failed ({exc}); give --cluster PATH "
                      "or fix access and use --live",)
    report_load(state)
    notes = tuple(f"cluster: {w}" for w in state.warnings[:2])
    return state, notes


def _load_snapshot(paths) -> ClusterState:
    from hubbletui.cluster.snapshot import load_snapshot

    state = load_snapshot(paths)
    report_load(state)
    return state


def _demo_folder() -> Path:
    """The built-in scenario: a bundle whose cluster changes as its story goes (the fixes it applies)."""
    try:
        from hubbletui import demo as scenario
    except ImportError as exc:
        raise HubbleTuiError(f"the demo scenario is not part of this installation ({exc})") from None
    return scenario.scenario_dir()


def _print_demo_fixes(recording: Path, cluster: Path) -> int:
    try:
        from hubbletui.render.fixes_out import print_fixes
    except ImportError as exc:
        raise HubbleTuiError(f"printing fixes needs the suggest module, which this build lacks ({exc})") from None
    from hubbletui.demo import CLUSTER_NAME

    return print_fixes(recording=recording, cluster=cluster, cluster_name=CLUSTER_NAME)


def _write_picked(picked: list[Picked]) -> None:
    from hubbletui.tui.fixes import picked_yaml

    sys.stdout.write(picked_yaml(picked))
    sys.stdout.flush()


def _say(message: str) -> None:
    click.echo(f"hubbletui: {message}", err=True)
