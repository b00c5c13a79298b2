"""Load a cluster snapshot: files or folders of YAML/JSON as `kubectl get -o yaml|json` writes them.

Accepted shapes, in any mix: single objects, multi-document YAML, `List`/`PodList`/`NamespaceList` (whose items
may carry no `kind`). A broken document is reported in `state.warnings` as `path:line: reason` and everything
else still loads; an object of a kind we do not model is counted in `state.skipped_kinds`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator

import orjson
import yaml

from hubbletui.cluster.model import KINDS, ClusterState
from hubbletui.untrusted import printable
from hubbletui.errors import HubbleTuiError

SNAPSHOT_SUFFIXES = (".yaml", ".yml", ".json")
# what could not be read when `hubbletui snapshot` took it, one "Kind: why" line each: answers from the
# snapshot say they are incomplete as live mode did (not a YAML file, so it is never taken for objects)
UNREADABLE_FILE = "unreadable.txt"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DOC_START = re.compile(r"^---(?:[ \t].*)?$")


def load_snapshot(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> ClusterState:
    """Read every snapshot file under ``paths`` into a new ClusterState."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    state = ClusterState(source="snapshot " + ", ".join(paths))
    for path in paths:
        if not os.path.exists(path):
            raise HubbleTuiError(f"{path}: no such file or folder")
    for file in _snapshot_files(paths):
        for obj in _objects_in_file(file, state.warnings):
            add_object(state, obj, where=file)
    for path in paths:
        if os.path.isdir(path):
            _read_unreadable(os.path.join(path, UNREADABLE_FILE), state.warnings)
    for ns in sorted({key[0] for kind, (_, namespaced) in KINDS.items() if namespaced
                      for key in state.objects[kind]}):
        state.ensure_namespace(ns)
    return state


def add_object(state: ClusterState, obj: dict, where: str = "") -> bool:
    """Store one API object after checking its group; returns whether it was kept."""
    kind = obj.get("kind") or ""
    if kind not in KINDS:
        state.skipped_kinds[kind or "<no kind>"] += 1
        return False
    group, namespaced = KINDS[kind]
    api_group = _group_of(obj.get("apiVersion"))
    if api_group is not None and api_group != group:
        # e.g. Calico's crd.projectcalico.org NetworkPolicy: same kind name, other semantics
        state.skipped_kinds[f"{kind} ({obj.get('apiVersion')})"] += 1
        return False
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        state.warnings.append(f"{where}: a {kind} without metadata.name, skipped")
        return False
    if namespaced and not meta.get("namespace"):
        obj = {**obj, "metadata": {**meta, "namespace": "default"}}
    return state.upsert(obj)


def _group_of(api_version: object) -> str | None:
    if not isinstance(api_version, str) or not api_version:
        return None
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def _read_unreadable(path: str, warnings: list[str]) -> None:
    """The kinds `hubbletui snapshot` could not read: warnings as live mode gave them, so answers from this
    snapshot are marked incomplete in the same way."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as exc:
        warnings.append(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}")
        return
    for number, line in enumerate(lines, start=1):
        kind, sep, why = line.partition(":")
        if not line.strip():
            continue
        if not sep or kind not in KINDS:
            warnings.append(f"{path}:{number}: not a 'Kind: why' line, skipped")
            continue
        warnings.append(f"{kind}: {printable(why.strip())} (when the snapshot was taken)")


def _snapshot_files(paths: list[str]) -> Iterator[str]:
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                for name in sorted(files):
                    if name.endswith(SNAPSHOT_SUFFIXES) and not name.startswith("."):
                        yield os.path.join(root, name)
        else:
            yield path  # named explicitly: read whatever its suffix


def _objects_in_file(path: str, warnings: list[str]) -> Iterator[dict]:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        warnings.append(f"{path}: cannot read: {exc.strerror or exc}")
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        warnings.append(f"{path}: not UTF-8 text (byte {exc.start})")
        return
    for doc in _documents(path, text, warnings):
        yield from _expand(path, doc, warnings)


def _documents(path: str, text: str, warnings: list[str]) -> list:
    if path.endswith(".json"):
        try:
            return [orjson.loads(text)]
        except orjson.JSONDecodeError as exc:
            warnings.append(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}")
            return []
    try:
        return list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError:
        return _documents_one_by_one(path, text, warnings)


def _documents_one_by_one(path: str, text: str, warnings: list[str]) -> list:
    """Parse each `---` document alone so one broken document does not hide its neighbours."""
    docs, chunk, first_line = [], [], 1
    lines = text.splitlines(keepends=True)
    for number, line in enumerate([*lines, "---"], start=1):
        if _DOC_START.match(line.rstrip("\r\n")) or number == len(lines) + 1:
            body = "".join(chunk)
            if body.strip():
                try:
                    docs.append(yaml.load(body, Loader=_Loader))
                except yaml.YAMLError as exc:
                    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
                    line_no = first_line + mark.line if mark is not None else first_line
                    reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
                    warnings.append(f"{path}:{line_no}: invalid YAML: {reason}")
            chunk, first_line = [], number + 1
        else:
            chunk.append(line)
    return docs


def _expand(path: str, doc: object, warnings: list[str]) -> Iterator[dict]:
    if doc is None:
        return
    if not isinstance(doc, dict):
        warnings.append(f"{path}: a document that is not an object ({type(doc).__name__}), skipped")
        return
    kind = doc.get("kind") or ""
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        item_kind = kind[:-4]  # PodList -> Pod; a plain List names the kind in each item
        for item in doc["items"]:
            if not isinstance(item, dict):
                warnings.append(f"{path}: an item of a {kind} that is not an object, skipped")
            elif not item.get("kind") and item_kind:
                yield {"kind": item_kind, **item}
            else:
                yield item
        return
    yield doc
