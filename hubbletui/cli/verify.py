"""`hubbletui verify`: would a proposed policy change break traffic that works today? A gate for CI."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson
import yaml

from hubbletui.cli.cluster_options import (ClusterFlags, EngineFlags, build_engine, cluster_options, engine_options,
                                           report_load)
from hubbletui.cli.flags import split
from hubbletui.cli.input_options import InputFlags, bundle_option, load_input
from hubbletui.errors import ExitCode, HubbleTuiError
from hubbletui.render.verify_report import verify_junit, verify_markdown, verify_text
from hubbletui.untrusted import json_safe


def _change_objects(paths: tuple[str, ...]) -> list[dict]:
    """The objects of every YAML file given (folders: their *.yaml and *.yml, sorted); `List`s are unpacked."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise HubbleTuiError(f"--change {raw}: no such file or folder")
    out = []
    for f in files:
        try:
            docs = list(yaml.safe_load_all(f.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise HubbleTuiError(f"--change {f}: not readable YAML ({str(exc).splitlines()[0]})") from None
        for doc in docs:
            items = doc.get("items", []) if isinstance(doc, dict) and doc.get("kind", "").endswith("List") else [doc]
            for obj in items:
                if obj is None:
                    continue
                if not isinstance(obj, dict) or not obj.get("kind") or not isinstance(obj.get("metadata"), dict):
                    raise HubbleTuiError(f"--change {f}: a document is not a Kubernetes object (kind, metadata)")
                out.append(obj)
    return out


def _deletion(text: str) -> tuple[str, str, str]:
    parts = text.split("/")
    if len(parts) == 2:
        return parts[0], "", parts[1]
    if len(parts) == 3 and all(parts[::2]):
        return parts[0], parts[1], parts[2]
    raise click.BadParameter(f"{text!r}: give KIND/NAMESPACE/NAME (or KIND/NAME when cluster-scoped)",
                             param_hint="--delete")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--input-file", metavar="FILE", help="A jsonpb recording (.gz ok; - reads stdin).")
@bundle_option
@cluster_options
@engine_options
@click.option("--change", "changes", multiple=True, metavar="PATH",
              help="YAML files or folders of new or modified objects (repeatable).")
@click.option("--delete", "deletes", multiple=True, metavar="KIND/NS/NAME", help="An object removed (repeatable).")
@click.option("--after", "after", multiple=True, metavar="PATH", type=click.Path(exists=True),
              help="The cluster state as it would be, as a snapshot (files or folders, repeatable): what the change "
                   "makes of the --cluster state. --change and --delete then apply on top of it.")
@click.option("-o", "--output", type=click.Choice(["text", "json", "md", "junit"]), default="text",
              show_default=True, help="text for people, json for programs, md for a pull-request comment, junit "
                                      "for CI (each recorded connection a test case).")
def verify(changes, deletes, after, output, **kwargs) -> int:
    """Replay every recorded connection against the cluster before and after a proposed change.

    Reports the working connections the change would deny (it breaks them) and the recorded drops it allows
    (it fixes them). Nothing is sent to any cluster.

    \b
      hubbletui verify --input-file flows.json --cluster snapshot/ --change policies/ -o junit > verify.xml
      hubbletui verify --input-file flows.json --cluster main/ --after pr-branch/ -o md > comment.md

    Exit codes: 0 nothing breaks, 6 something would break, 1 errors, 2 usage.
    """
    from hubbletui.suggest.verify import verify as run_verify
    from hubbletui.flows.recording import read_events

    inputs, cluster, engine_flags = split(kwargs, InputFlags, ClusterFlags, EngineFlags)
    if not inputs.input_dir and not inputs.input_file:
        raise click.UsageError("give the flows: --input-file FILE (with --cluster or --live) or --input DIR")
    if not changes and not deletes and not after:
        raise click.UsageError("give the change: --change PATH, --delete KIND/NS/NAME, or --after SNAPSHOT")
    removed = [_deletion(d) for d in deletes]
    upserts = _change_objects(changes)
    loaded = load_input(inputs, cluster)
    engine = build_engine(engine_flags, loaded.state)
    after_engine = None
    if after:
        from hubbletui.cluster.snapshot import load_snapshot

        after_state = load_snapshot(list(after))
        report_load(after_state)
        after_engine = build_engine(engine_flags, after_state)  # judged with the same Cilium and Istio settings
    result = run_verify(engine, read_events(loaded.flows), upserts, removed, loaded.timeline, after=after_engine)
    if output == "json":
        sys.stdout.buffer.write(json_safe(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2)) + b"\n")
    elif output == "junit":
        sys.stdout.buffer.write(verify_junit(result))
    else:
        click.echo(verify_markdown(result) if output == "md" else verify_text(result))
    sys.stdout.flush()
    return ExitCode.OK if result.ok else ExitCode.BREAKS
