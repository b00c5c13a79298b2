"""Writing a snapshot folder: one `kind: List` YAML file per kind, each file replaced atomically
(hubbletui/files.py), so a failure part-way (a full disk, Ctrl-C) leaves the previous snapshot's file whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hubbletui.cluster.kinds_api import RESOURCES
from hubbletui.cluster.model import object_key
from hubbletui.cluster.snapshot import UNREADABLE_FILE
from hubbletui.errors import HubbleTuiError
from hubbletui.files import write_atomic

FILE_NAMES = {kind: f"{resource.plural}.yaml" for kind, resource in RESOURCES.items()}
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's safe dumper is the same format, faster


@dataclass
class SnapshotWritten:
    written: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)  # files of kinds that could not be read this time


def write_snapshot(directory: Path, items_by_kind: Mapping[str, list[dict]],
                   unreadable: list[str] = ()) -> SnapshotWritten:
    """Write one file per kind read, and ``unreadable`` ("Kind: why" lines) to UNREADABLE_FILE; a file left by an
    earlier snapshot for a kind not read now is removed, so the folder never mixes two moments."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HubbleTuiError(f"cannot create {directory}: {exc.strerror or exc}") from None
    result = SnapshotWritten()
    for kind, name in FILE_NAMES.items():
        path = directory / name
        if kind in items_by_kind:
            document = {"apiVersion": "v1", "kind": "List", "items": sorted(items_by_kind[kind], key=object_key)}
            write_atomic(path, _render(document))
            result.written.append(path)
        elif path.exists():
            _remove(path)
            result.removed.append(path)
    marker = directory / UNREADABLE_FILE
    if unreadable:
        write_atomic(marker, "".join(f"{line}\n" for line in unreadable))
        result.written.append(marker)
    elif marker.exists():
        _remove(marker)
    return result


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError as exc:
        raise HubbleTuiError(f"cannot remove {path} left by an earlier snapshot: {exc.strerror or exc}") from None


def unreadable_lines(warnings: list[str]) -> list[str]:
    """The warnings that say a kind could not be (fully) read; a CRD not installed is not one: no such objects."""
    return [w for w in warnings if w.partition(":")[0] in FILE_NAMES and "not installed" not in w]


def _render(document: dict) -> str:
    return yaml.dump(document, Dumper=_DUMPER, sort_keys=True, default_flow_style=False, allow_unicode=True)
