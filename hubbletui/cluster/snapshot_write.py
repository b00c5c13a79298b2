"""Writing a snapshot folder: one `kind: List` YAML file per kind, each file replaced atomically.

A file is written to a temporary name in the same folder, flushed to disk, then renamed over the old one,
so a failure part-way (a full disk, Ctrl-C) leaves the previous snapshot's file whole.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TextIO

import yaml

from hubbletui.cluster.kinds_api import RESOURCES
from hubbletui.cluster.model import object_key
from hubbletui.errors import HubbleTuiError

FILE_NAMES = {kind: f"{resource.plural}.yaml" for kind, resource in RESOURCES.items()}
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's safe dumper is the same format, faster


@dataclass
class SnapshotWritten:
    written: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)  # files of kinds that could not be read this time


def write_snapshot(directory: Path, items_by_kind: Mapping[str, list[dict]]) -> SnapshotWritten:
    """Write one file per kind read; a file left by an earlier snapshot for a kind not read now is removed,
    so the folder never mixes two moments."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HubbleTuiError(f"cannot create {directory}: {exc.strerror or exc}") from None
    result = SnapshotWritten()
    for kind, name in FILE_NAMES.items():
        path = directory / name
        if kind in items_by_kind:
            document = {"apiVersion": "v1", "kind": "List", "items": sorted(items_by_kind[kind], key=object_key)}
            write_atomically(path, partial(_dump, document))
            result.written.append(path)
        elif path.exists():
            try:
                path.unlink()
            except OSError as exc:
                raise HubbleTuiError(f"cannot remove {path} left by an earlier snapshot: "
                                     f"{exc.strerror or exc}") from None
            result.removed.append(path)
    return result


def _dump(document: dict, stream: TextIO) -> None:
    yaml.dump(document, stream, Dumper=_DUMPER, sort_keys=True, default_flow_style=False, allow_unicode=True)


def write_atomically(path: Path, write: Callable[[TextIO], None]) -> None:
    """Call ``write(stream)`` on a temporary file next to ``path``, then rename it over ``path``."""
    try:
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise HubbleTuiError(f"cannot write in {path.parent}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp_name, 0o644)  # mkstemp's 0600 would surprise whoever shares the folder
        os.replace(temp_name, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        if isinstance(exc, OSError):
            raise HubbleTuiError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
