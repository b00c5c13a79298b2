"""`hubbletui snapshot`: write the cluster's policy-relevant objects to a folder, for `--cluster DIR` later."""

from __future__ import annotations

from pathlib import Path

import click

from hubbletui.errors import ExitCode


@click.command(help="Write the cluster's policy-relevant objects to DIR (one `kind: List` YAML file per kind) "
                    "for offline use with `--cluster DIR`. Reads only (get/list).")
@click.option("--context", metavar="NAME", help="kubeconfig context (default: the current context).")
@click.option("--kubeconfig", metavar="FILE",
              help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config; in a pod, its service account).")
@click.option("-n", "--namespace", "namespaces", multiple=True, metavar="NS",
              help="Where RBAC forbids listing a kind cluster-wide, read it in this namespace (repeatable).")
@click.option("-o", "--output-dir", "output_dir", required=True, metavar="DIR",
              type=click.Path(file_okay=False, path_type=Path), help="Folder to write (created if missing).")
def snapshot(context: str | None, kubeconfig: str | None, namespaces: tuple[str, ...], output_dir: Path) -> int:
    # imported here: the kubernetes client is slow to import and other commands do not need it
    from hubbletui.cluster.kube_connect import connect, one_line
    from hubbletui.cluster.live import list_cluster
    from hubbletui.cluster.snapshot_write import unreadable_lines, write_snapshot

    conn = connect(context, kubeconfig)
    try:
        listing = list_cluster(conn, namespaces)
    finally:
        conn.api_client.close()
    for note in conn.notes:
        click.echo(f"hubbletui: warning: {note}", err=True)
    # before anything is written: nothing readable must not replace an earlier snapshot with nothing
    listing.check_readable(conn, namespaces)
    result = write_snapshot(output_dir, {kind: listed.items for kind, listed in listing.listed.items()},
                            unreadable_lines(listing.warnings))
    counts = ", ".join(f"{len(listed.items)} {kind}" for kind, listed in listing.listed.items() if listed.items)
    empty = sum(1 for listed in listing.listed.values() if not listed.items)
    counts = f"{counts or 'no objects'}{f' ({empty} kinds empty)' if empty and counts else ''}"
    click.echo(f"hubbletui: wrote {len(result.written)} files to {output_dir} from {one_line(conn.source)} "
               f"({one_line(conn.server)}): {counts}", err=True)
    for path in result.removed:
        click.echo(f"hubbletui: removed {path}: left by an earlier snapshot, its kind could not be read now", err=True)
    for warning in listing.warnings:
        click.echo(f"hubbletui: warning: {warning}", err=True)
    return ExitCode.OK
