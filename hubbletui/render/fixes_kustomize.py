"""Fixes as a kustomize overlay (`suggest --out-dir DIR --kustomize`), for a policy repository or GitOps:

    DIR/kustomization.yaml    ties the rest together
    DIR/new/*.yaml            the new policies (resources)
    DIR/targets/*.yaml        the existing objects the patches change, as the cluster state has them (resources,
                              so that `kubectl kustomize DIR` prints them patched; in a repository that already
                              holds them, point `resources` at that base instead)
    DIR/patches/*.yaml        label changes as strategic-merge patches, rule patches as JSON 6902 lists, each
                              named with its target in kustomization.yaml

Only the best fix of each group is in the overlay (applying it applies one fix per group). Every file is written
atomically and emitted by PyYAML.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from hubbletui.errors import HubbleTuiError
from hubbletui.files import write_atomic
from hubbletui.render.fixes_yaml import comment, dump
from hubbletui.suggest.model import GroupFixes, Patch

KUSTOMIZATION = "kustomization.yaml"
# set by the API server: not part of what a repository holds, and refused by apply when stale
_SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation", "selfLink")


def _file_name(kind: str, namespace: str, name: str) -> str:
    return f"{kind.lower()}-{namespace or 'cluster'}-{name}.yaml".replace("/", "-")


def _clean(obj: dict) -> dict:
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata", {})
    for key in _SERVER_FIELDS:
        meta.pop(key, None)
    return out


def _group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def _target(obj: dict) -> dict:
    group, version = _group_version(obj["apiVersion"])
    meta = obj["metadata"]
    target = {"group": group, "version": version, "kind": obj["kind"], "name": meta["name"]}
    if meta.get("namespace"):
        target["namespace"] = meta["namespace"]
    return target


def _patch_document(patch: Patch, obj: dict) -> object:
    """Strategic merge: the body headed by the object's identity; JSON 6902: the operation list as it is."""
    if patch.type == "json":
        return patch.body
    meta = {"name": obj["metadata"]["name"]}
    if obj["metadata"].get("namespace"):
        meta["namespace"] = obj["metadata"]["namespace"]
    head = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": meta}
    body = copy.deepcopy(patch.body)
    head["metadata"].update(body.pop("metadata", {}))
    return {**head, **body}


def write_kustomize(groups: list[GroupFixes], out_dir: str | Path, state) -> list[Path]:
    """Write the overlay; returns the files written, kustomization.yaml last."""
    folder = Path(out_dir)
    for sub in ("", "new", "targets", "patches"):
        try:
            (folder / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HubbleTuiError(f"cannot create {folder / sub}: {exc.strerror or exc}") from None
    written: list[Path] = []
    resources: list[str] = []
    patches: list[dict] = []
    missing: list[str] = []
    for group in groups:
        if not group.suggestions:
            continue
        best = group.suggestions[0]
        for change in best.changes:
            head = comment(f"fixes: {group.case.fixes_text}") + "\n" + comment(f"{change.kind}: {change.summary}")
            if change.new_object is not None:
                meta = change.new_object["metadata"]
                rel = "new/" + _file_name(change.new_object["kind"], meta.get("namespace", ""), meta["name"])
                written.append(write_atomic(folder / rel, head + "\n" + dump(change.new_object)))
                resources.append(rel)
            if change.patch is not None:
                ref = change.patch.target
                obj = state.get(ref.kind, ref.namespace, ref.name)
                if obj is None:  # the fix was checked against this state, so this would be a bug: say it
                    missing.append(ref.text)
                    continue
                rel_target = "targets/" + _file_name(ref.kind, ref.namespace, ref.name)
                if rel_target not in resources:
                    written.append(write_atomic(folder / rel_target, dump(_clean(obj))))
                    resources.append(rel_target)
                rel = f"patches/{len(patches) + 1:03d}-" + _file_name(ref.kind, ref.namespace, ref.name)
                doc = _patch_document(change.patch, obj)
                text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=False, width=100)
                written.append(write_atomic(folder / rel, head + "\n" + text))
                patches.append({"path": rel, "target": _target(obj)})
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "resources": resources}
    if patches:
        kustomization["patches"] = patches
    head = [comment("Suggested fixes from hubbletui: the best checked fix of every group of dropped flows."),
            comment("Check it: kubectl kustomize DIR; apply it: kubectl apply -k DIR (try --dry-run=server first)."),
            comment("targets/ holds the patched objects as the cluster state has them; in a repository that "
                    "already holds them, list that base in resources instead.")]
    head += [comment(f"not written: {m} is not in the cluster state") for m in missing]
    written.append(write_atomic(folder / KUSTOMIZATION, "\n".join(head) + "\n" + dump(kustomization)))
    return written
