"""Flags shared by the commands that reason over a cluster's policies (trace, explain, suggest, tui):
where the cluster state comes from (`--cluster PATH...` or `--live`) and how Cilium is configured."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import click

from hubbletui.cluster.model import ClusterState
from hubbletui.untrusted import printable


def cluster_options(func: Callable) -> Callable:
    """--cluster PATH (repeatable) | --live [--context X --kubeconfig F]."""
    options = [
        click.option("--cluster", "cluster", multiple=True, metavar="PATH",
                     type=click.Path(exists=True, dir_okay=True, file_okay=True),
                     help="A snapshot: YAML/JSON files or folders as `kubectl get -o yaml|json` or "
                          "`hubbletui snapshot` write them (repeatable)."),
        click.option("--live", is_flag=True, help="Read the cluster through the Kubernetes API (get/list only)."),
        click.option("--context", metavar="NAME", help="With --live: the kubeconfig context."),
        click.option("--kubeconfig", metavar="FILE", help="With --live: the kubeconfig file."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def namespace_option(func: Callable) -> Callable:
    """-n/--namespace NS (repeatable), for the commands without flow filters (whose -n already names them)."""
    return click.option("-n", "--namespace", "namespaces", multiple=True, metavar="NS",
                        help="With --live: where RBAC forbids listing a kind cluster-wide, read it in this "
                             "namespace (repeatable), as a RoleBinding allows.")(func)


def engine_options(func: Callable) -> Callable:
    """How the cluster's Cilium and Istio are configured, where it differs from their defaults."""
    func = click.option("--cluster-name", default="default", show_default=True, metavar="NAME",
                        help="Cilium's cluster.name (identities carry io.cilium.k8s.policy.cluster=NAME).")(func)
    func = click.option("--istio-root-namespace", default="istio-system", show_default=True, metavar="NS",
                        help="Istio's root namespace (its AuthorizationPolicies apply mesh-wide).")(func)
    func = click.option("--host-firewall/--no-host-firewall", default=None,
                        help="Cilium's host firewall (enable-host-firewall); default: on when the cluster "
                             "state holds a host policy (nodeSelector).")(func)
    func = click.option("--host-network-pods", type=click.Choice(["host", "pod"]), default="host",
                        show_default=True,
                        help="host: a hostNetwork pod's traffic is the host's, as Cilium sees it; pod: judge it "
                             "as a pod, as NetworkPolicy tools such as netpol-analyzer do.")(func)
    func = click.option("--egress-named-ports", type=click.Choice(["cluster", "destination"]), default="cluster",
                        show_default=True,
                        help="cluster: an egress named port resolves through every pod's named ports, as Cilium "
                             "does (a name with two numbers resolves to nothing); destination: on the "
                             "destination pod, as NetworkPolicy tools do.")(func)
    func = click.option("--enforcement-mode", type=click.Choice(["default", "always", "never"]),
                        default="default", show_default=True,
                        help="Cilium's policy enforcement mode (`enable-policy`).")(func)
    return func


@dataclass(frozen=True)
class ClusterFlags:
    """Where the cluster state comes from: the flags of ``cluster_options``."""

    cluster: tuple[str, ...] = ()  # snapshot paths
    live: bool = False
    context: str | None = None
    kubeconfig: str | None = None
    # with --live: the namespaces to read one by one where a cluster-wide list is forbidden (-n, or the
    # namespaces the flow filters name)
    namespaces: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.cluster and self.live:
            raise click.UsageError("give either --cluster PATH or --live, not both")
        if (self.context or self.kubeconfig) and not self.live:
            raise click.UsageError("--context and --kubeconfig go with --live")

    def reading(self, namespaces) -> ClusterFlags:
        """These flags, with ``namespaces`` added to the ones read where cluster-wide lists are forbidden."""
        return replace(self, namespaces=tuple(dict.fromkeys((*self.namespaces, *(n for n in namespaces if n)))))


def flow_namespaces(filters) -> tuple[str, ...]:
    """The namespaces a command's flow filters name (-n, --from-namespace, --to-namespace)."""
    return (*filters.namespace, *filters.from_namespace, *filters.to_namespace)


@dataclass(frozen=True)
class EngineFlags:
    """How Cilium and Istio are configured: the flags of ``engine_options``, with their defaults."""

    enforcement_mode: str = "default"
    istio_root_namespace: str = "istio-system"
    cluster_name: str = "default"
    host_firewall: bool | None = None
    host_network_pods: str = "host"
    egress_named_ports: str = "cluster"


def load_cluster(flags: ClusterFlags, *, required: bool = True) -> ClusterState | None:
    """The cluster state the flags name; load warnings go to stderr; None when none was given and
    ``required`` is False."""
    if flags.live:
        from hubbletui.cluster.live import load_live

        state = load_live(context=flags.context, kubeconfig=flags.kubeconfig, namespaces=flags.namespaces)
    elif flags.cluster:
        from hubbletui.cluster.snapshot import load_snapshot
        state = load_snapshot(list(flags.cluster))
    elif required:
        raise click.UsageError("name the cluster: --cluster PATH (a snapshot) or --live")
    else:
        return None
    report_load(state)
    return state


def report_load(state: ClusterState) -> None:
    for warning in state.warnings:
        click.echo(f"hubbletui: warning: {warning}", err=True)
    if state.skipped_kinds:
        skipped = ", ".join(f"{n} {kind}" for kind, n in sorted(state.skipped_kinds.items()))
        click.echo(f"hubbletui: skipped objects of kinds not modelled: {skipped}", err=True)


def build_engine(flags: EngineFlags, state: ClusterState, *, follow: bool = False):
    """A PolicyEngine over ``state`` configured as the flags say; ``follow`` keeps the engine current as a
    live state changes."""
    from hubbletui.policy.engine import PolicyEngine

    engine = PolicyEngine(state, **asdict(flags), follow=follow)
    report_rejected(engine)
    return engine


def report_rejected(engine) -> None:
    """Part of the load report: policies in the state that Cilium's agent (or Istio) would refuse."""
    for policy in engine.rejected_policies():
        click.echo(f"hubbletui: warning: {printable(policy.key.ref)}: rejected by Cilium: "
                   f"{printable(policy.rejected)}; not enforced", err=True)
    from hubbletui.policy.istio import policy_ref

    for obj, why in engine.authorization_policies()[1]:
        click.echo(f"hubbletui: warning: AuthorizationPolicy/{printable(policy_ref(obj))}: rejected by Istio: "
                   f"{printable(why)}; not applied", err=True)


def incomplete_reasons(engine) -> list[str]:
    """Every unread kind that could change some answer of a whole-recording command (Istio's kinds included:
    such a command judges flows at every layer)."""
    from hubbletui.policy.completeness import relevant

    return relevant(engine.incomplete, istio=True)


def exit_code_of(engine, code: int) -> int:
    """The command's own exit code, unless its answers rest on cluster state that could not be read."""
    from hubbletui.errors import ExitCode

    return ExitCode.INCOMPLETE if report_incomplete(incomplete_reasons(engine)) else code


def report_incomplete(reasons) -> bool:
    """Say on stderr that answers depend on cluster state that is missing; True when there is something to say
    (the command then exits with ExitCode.INCOMPLETE)."""
    reasons = list(dict.fromkeys(reasons))
    for why in reasons:
        click.echo(f"hubbletui: incomplete cluster state: {printable(why)}: answers that depend on it may be wrong",
                   err=True)
    return bool(reasons)
