"""Helpers for the suggest tests: the scenarios, applying a fix to a snapshot the way kubectl would, asking
`hubbletui trace` about the result, and validating every suggestion against the CRD schemas in ../shared.

Test modules import `validate_every_suggestion` (an autouse fixture): every suggestion the suite produces
through `suggest_for_case` (the CLI, the TUI API and `suggest_all` all go through it) is validated.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from paths import FIXTURES, ROOT, SHARED

from hubbletui.cli import cli
from hubbletui.cluster.snapshot import load_snapshot
from hubbletui.flows.recording import read_events
from hubbletui.policy.engine import PolicyEngine
from hubbletui.suggest import fixes as fixes_module

SCENARIOS = FIXTURES / "scenarios"
SCHEMAS = SHARED / "schemas"
SCHEMA_FILES = {
    "CiliumNetworkPolicy": "cilium.io_ciliumnetworkpolicy_v2.json",
    "CiliumClusterwideNetworkPolicy": "cilium.io_ciliumclusterwidenetworkpolicy_v2.json",
    "NetworkPolicy": "networking.k8s.io_networkpolicy_v1.json",
    "AuthorizationPolicy": "security.istio.io_authorizationpolicy_v1.json",
}
VALIDATED: list[str] = []  # "kind ns/name" of every object validated, for the test that counts them


@functools.cache
def validators() -> dict | None:
    if not SCHEMAS.is_dir():
        return None
    from jsonschema import Draft202012Validator

    # no check_schema: one Cilium pattern uses Go's \PC, which Python's re cannot compile (schemas/SOURCES.md)
    return {kind: Draft202012Validator(json.loads((SCHEMAS / name).read_text())) for kind, name in
            SCHEMA_FILES.items()}


def schema_errors(obj: dict) -> list[str]:
    found = validators()
    validator = found.get(obj.get("kind", "")) if found else None
    if validator is None:
        return []
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]


def validate_suggestion(s) -> None:
    """Every policy object a suggestion creates or leaves patched must be valid for its CRD schema."""
    for change in s.changes:
        for obj in ([change.new_object] if change.new_object is not None else []) + list(change.after):
            if obj.get("kind") in SCHEMA_FILES:
                errors = schema_errors(obj)
                assert not errors, f"{change.summary}: {errors}"
                meta = obj.get("metadata") or {}
                VALIDATED.append(f"{obj['kind']} {meta.get('namespace', '')}/{meta.get('name')}")


@pytest.fixture(autouse=True)
def validate_every_suggestion(monkeypatch):
    if validators() is None:
        yield  # test_schemas_validate_every_scenario_fix says why it is skipped
        return
    original = fixes_module.suggest_for_case

    def checked(*args, **kwargs):
        result = original(*args, **kwargs)
        for s in result.suggestions:
            validate_suggestion(s)
        return result

    monkeypatch.setattr(fixes_module, "suggest_for_case", checked)
    yield


# ---------------------------------------------------------------------------------------------- scenarios

def scenario(name: str) -> tuple[Path, Path]:
    """(cluster snapshot, recording) of a scenario."""
    return SCENARIOS / name / "cluster.yaml", SCENARIOS / name / "flows.jsonl"


def suggest_scenario(cluster: Path, recording: Path, fmt: str | None = None, top: int | None = None):
    engine = PolicyEngine(load_snapshot(cluster))
    groups, other = fixes_module.suggest_groups(engine, read_events(str(recording)), fmt, top)
    return engine, groups, other


def group_for(groups, src: str, dst: str, port: int):
    found = [g for g in groups if (g.case.src, g.case.dst, g.case.port.number) == (src, dst, port)]
    assert len(found) == 1, [g.case.fixes_text for g in groups]
    return found[0]


# ---------------------------------------------------------------------------------------------- applying a fix

def load_docs(path: Path) -> list[dict]:
    files = sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.suffix in (".yaml", ".yml"))
    out = []
    for file in files:
        for doc in yaml.safe_load_all(file.read_text()):
            if not doc:
                continue
            out.extend(doc.get("items") or [] if doc.get("kind", "").endswith("List") else [doc])
    return out


def _key(obj: dict) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return obj.get("kind", ""), meta.get("namespace") or "", meta.get("name") or ""


def _merge(target: dict, patch: dict) -> None:
    """Strategic merge of maps (all a label patch needs)."""
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _json_patch(target: dict, ops: list[dict]) -> None:
    for op in ops:
        assert op["op"] == "add", op
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
        node = target
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node.append(op["value"]) if parts[-1] == "-" else node.insert(int(parts[-1]), op["value"])
        else:
            node[parts[-1]] = op["value"]


def _owned_pods(docs: list[dict], kind: str, ns: str, name: str) -> list[dict]:
    """The pods a rollout of this workload would replace (found by their owner references)."""
    out = []
    for doc in docs:
        if doc.get("kind") != "Pod" or (doc.get("metadata") or {}).get("namespace") != ns:
            continue
        for ref in (doc["metadata"].get("ownerReferences") or []):
            owner = ref.get("name", "")
            if (ref.get("kind") == kind and owner == name) or (
                    kind == "Deployment" and ref.get("kind") == "ReplicaSet" and owner.rsplit("-", 1)[0] == name):
                out.append(doc)
    return out


def apply_fix(snapshot: Path, suggestion, out: Path) -> Path:
    """A copy of ``snapshot`` in ``out`` with the suggestion applied as kubectl (and a rollout) would."""
    docs = load_docs(snapshot)
    for change in suggestion.changes:
        if change.new_object is not None:
            docs.append(copy.deepcopy(change.new_object))
            continue
        patch = change.patch
        key = (patch.target.kind, patch.target.namespace, patch.target.name)
        target = next(d for d in docs if _key(d) == key)
        if patch.type == "json":
            _json_patch(target, copy.deepcopy(patch.body))
            continue
        _merge(target, patch.body)
        template_labels = ((((patch.body.get("spec") or {}).get("template") or {}).get("metadata") or {})
                           .get("labels"))
        if template_labels:
            for pod in _owned_pods(docs, *key):
                _merge(pod, {"metadata": {"labels": template_labels}})
    out.mkdir(parents=True, exist_ok=True)
    (out / "cluster.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return out


def trace(cluster: Path, src: str, dst: str, dport: str) -> dict:
    """`hubbletui trace ... -o json`, run in this process."""
    result = CliRunner().invoke(cli, ["trace", "--cluster", str(cluster), "--src", src, "--dst", dst,
                                      "--dport", dport, "-o", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def layer_verdicts(answer: dict) -> dict[str, str]:
    return {layer["layer"]: layer["verdict"] for layer in answer["layers"]}
