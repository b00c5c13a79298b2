"""`--input DIR`: an incident bundle (cluster/bundle.py) in place of `--input-file FILE` plus `--cluster PATH`.

The commands that read a recording (explain, suggest, verify, tui, serve) take either; a bundle carries its
own cluster, so it goes with neither --cluster nor --live.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import click

from hubbletui.cli.cluster_options import ClusterFlags, load_cluster, report_load
from hubbletui.cluster.model import ClusterState
from hubbletui.cluster.timeline import Timeline


def bundle_option(func: Callable) -> Callable:
    return click.option("--input", "input_dir", metavar="DIR", default=None,
                        help="An incident bundle (`hubbletui record --live -o DIR`): its flows, the cluster when "
                             "recording began and every change since; each flow is judged by the cluster as it "
                             "was at its time. Replaces --input-file and --cluster.")(func)


@dataclass(frozen=True)
class InputFlags:
    """Where the flows come from: --input DIR or --input-file FILE."""

    input_dir: str | None = None
    input_file: str | None = None

    def __post_init__(self) -> None:
        if self.input_dir and self.input_file:
            raise click.UsageError("give either --input DIR (a bundle) or --input-file FILE, not both")


@dataclass
class Input:
    flows: str | None  # the recording to read ('-' for stdin), None when flows come from a server
    state: ClusterState | None
    timeline: Timeline | None = None  # a bundle's changes


def load_input(flags: InputFlags, cluster: ClusterFlags, *, required: bool = True) -> Input:
    """The flows and the cluster the flags name (load warnings on stderr). ``required``: a cluster must be
    named, by a bundle or by the cluster flags."""
    if flags.input_dir:
        if cluster.cluster or cluster.live:
            raise click.UsageError("a bundle (--input DIR) carries its cluster: drop --cluster/--live")
        from hubbletui.cluster.bundle import load_bundle

        bundle = load_bundle(flags.input_dir)
        report_load(bundle.state)
        return Input(str(bundle.flows), bundle.state, bundle.timeline)
    return Input(flags.input_file, load_cluster(cluster, required=required))
