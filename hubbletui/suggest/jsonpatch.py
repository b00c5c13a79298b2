"""The part of JSON Patch (RFC 6902) and JSON Pointer (RFC 6901) a suggestion uses: "add" operations, to
compute the object a `kubectl patch --type=json` leaves behind."""

from __future__ import annotations

import copy
import re

_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def pointer(tokens: list[str | int]) -> str:
    return "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)


def tokens_of_path(path: str) -> list[str | int]:
    """A rule path as the engine names it ("specs[1].ingress[0]") -> pointer tokens (["specs", 1, "ingress", 0])."""
    out: list[str | int] = []
    for name, index in _PATH_PART.findall(path):
        out.append(int(index) if index else name)
    return out


def get(obj, tokens: list[str | int]):
    for t in tokens:
        obj = obj[t]
    return obj


def _parse(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ValueError(f"a JSON pointer starts with '/': {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def apply(obj: dict, ops: list[dict]) -> dict:
    """A copy of ``obj`` with the "add" operations applied; ValueError when one cannot apply."""
    out = copy.deepcopy(obj)
    for op in ops:
        if op.get("op") != "add":
            raise ValueError(f"only 'add' operations are supported, not {op.get('op')!r}")
        *parents, last = _parse(op["path"])
        node = out
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        value = copy.deepcopy(op["value"])
        if isinstance(node, list):
            if last == "-":
                node.append(value)
            else:
                node.insert(int(last), value)
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ValueError(f"cannot add under {op['path']!r}")
    return out
