"""`hubbletui suggest`: the smallest checked fix for every group of dropped (or mesh-refused) flows."""

from __future__ import annotations

import sys

import click

from hubbletui.cli.cluster_options import (ClusterFlags, EngineFlags, build_engine, cluster_options, engine_options,
                                           exit_code_of, flow_namespaces)
from hubbletui.cli.flags import split
from hubbletui.cli.input_options import InputFlags, bundle_option, load_input
from hubbletui.cli.flow_options import (FilterOrderCommand, ServerFlags, TimeFlags, build_query, filter_options, require_one_source,
                                        server_options, time_options)
from hubbletui.flows.request import FilterSpec
from hubbletui.errors import ExitCode

FORMATS = ("cilium", "k8s", "istio", "all")
DEFAULT_TOP = 3


@click.command(cls=FilterOrderCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--input-file", metavar="FILE|-", help="A jsonpb recording (.gz ok; - reads stdin).")
@bundle_option
@server_options
@filter_options(exclude=("--cluster",))
@time_options
@cluster_options
@engine_options
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="What new policies are: cilium (CiliumNetworkPolicy; the default), k8s (NetworkPolicy; the "
                   "default when the cluster has only NetworkPolicies), istio (only AuthorizationPolicy fixes), "
                   "all (both policy kinds).")
@click.option("-o", "--output", type=click.Choice(["yaml", "json", "md", "script"]), default="yaml",
              show_default=True,
              help="yaml for `kubectl apply -f -` (new objects only: a fix that patches an existing object is a "
                   "comment there, and its `kubectl patch` command is printed on stderr), script for a bash script "
                   "of `kubectl apply`/`kubectl patch` commands that applies every best fix, json for programs, "
                   "md for people.")
@click.option("--out-dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Write one YAML file per fix and an index.md there (atomically; -o is then not used); stdout "
                   "lists the files written.")
@click.option("--kustomize", is_flag=True, default=False,
              help="With --out-dir: write a kustomize overlay instead (new policies as resources, label changes "
                   "and rule patches as strategic-merge/JSON 6902 patches on the objects they change, and a "
                   "kustomization.yaml); `kubectl kustomize DIR` prints the result, `kubectl apply -k DIR` "
                   "applies it.")
@click.option("--top", type=click.IntRange(min=1), default=DEFAULT_TOP, show_default=True, metavar="N",
              help="At most N fixes per group, best first.")
def suggest(server, fmt, output, out_dir, kustomize, top, **kwargs) -> int:
    """Suggest the smallest checked fix for every group of dropped flows.

    Every fix is applied to a copy of the cluster state first: the group's drops must become allowed and every
    forwarded flow of the input must stay allowed; what else it newly allows (its blast radius) is counted, and
    fixes are ranked by it. In YAML, the best fix of each group is live when it is a new object and the
    alternatives are commented out; a best fix that patches an existing object (a label change, a rule added to
    a policy) cannot be applied by `kubectl apply`, and is reported on stderr with its `kubectl patch` command.
    `-o script` applies both kinds.

    \b
      hubbletui suggest --input-file flows.json --cluster snapshot/ | kubectl apply -f -
      hubbletui suggest --input-file flows.json --cluster snapshot/ -o script > fixes.sh
      DRY_RUN=server bash fixes.sh
      hubbletui suggest --input-file flows.json --cluster snapshot/ --out-dir overlay/ --kustomize
      hubbletui suggest --input-file flows.json --cluster snapshot/ --out-dir fixes/

    Exit codes: 0 fixes suggested, 3 nothing to fix, 1 errors, 4 unreachable.
    """
    from hubbletui.suggest.fixes import default_format, suggest_groups
    from hubbletui.render.fixes_out import render, say_not_applyable, say_unfixed, write_out_dir

    inputs, filters, times, server_flags, cluster, engine_flags = split(kwargs, InputFlags, FilterSpec, TimeFlags,
                                                                        ServerFlags, ClusterFlags, EngineFlags)
    input_file = inputs.input_file
    require_one_source(input_file or inputs.input_dir, server)
    if kustomize and out_dir is None:
        raise click.UsageError("--kustomize writes an overlay folder: give it with --out-dir DIR")
    if input_file is None and inputs.input_dir is None and server is None:
        if sys.stdin.isatty():
            raise click.UsageError("give the flows: --input-file FILE (or -) or --server ADDRESS")
        input_file = "-"
    query = build_query(filters, times)
    loaded = load_input(InputFlags(inputs.input_dir, input_file), cluster.reading(flow_namespaces(filters)))
    state = loaded.state
    engine = build_engine(engine_flags, state)
    events = _events(loaded.flows, server, query, server_flags)
    groups, other = suggest_groups(engine, events, fmt, top, loaded.timeline)
    say_unfixed(groups, other)
    if out_dir is not None and kustomize:
        from hubbletui.render.fixes_kustomize import write_kustomize

        for path in write_kustomize(groups, out_dir, state):
            click.echo(str(path))
    elif out_dir is not None:
        for path in write_out_dir(groups, out_dir):
            click.echo(str(path))
    else:
        if output == "yaml":
            say_not_applyable(groups)
        sys.stdout.buffer.write(render(groups, output, fmt or default_format(engine), other))
        sys.stdout.flush()
    return exit_code_of(engine, ExitCode.OK if any(g.suggestions for g in groups) else ExitCode.NOTHING_TO_FIX)


def _events(input_file, server, query, server_flags: ServerFlags):
    if input_file is not None:
        from hubbletui.flows.recording import read_events
        from hubbletui.flows.select import select

        return list(select(read_events(input_file), query))
    from hubbletui.cli.server_source import server_events  # grpc only when asked for

    return list(server_events(server_flags, server, query))
