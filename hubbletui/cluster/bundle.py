"""Incident bundles: one folder an engineer can hand to a colleague, in plain files.

    DIR/flows.jsonl     the flows (jsonpb lines, as `hubble observe -o jsonpb` prints them)
    DIR/cluster/        the cluster state when recording began (one `kind: List` YAML per kind, as `snapshot` writes)
    DIR/changes.jsonl   every cluster change while recording (changelog.py), in time order

Reading one gives the state at the end (the start with every change applied) and a timeline that puts back any
earlier moment. Damage is reported as FILE:LINE and loses only the damaged part: a bad YAML document, a bad
change line, a bad flow line (the recording reader's own report).
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from hubbletui.cluster.changelog import read_changes, replay_into, write_change
from hubbletui.cluster.model import KINDS, ClusterState
from hubbletui.cluster.timeline import DEFAULT_MAX_CHANGES, Timeline, TimelineEntry
from hubbletui.errors import HubbleTuiError

FLOWS = "flows.jsonl"
CLUSTER = "cluster"
CHANGES = "changes.jsonl"
# a bundle is bounded by its files: keep every change it holds, up to the usual count
BUNDLE_MAX_AGE_S = float("inf")


@dataclass
class Bundle:
    path: Path
    state: ClusterState  # as at the end of the recording
    timeline: Timeline  # the changes while recording

    @property
    def flows(self) -> Path:
        return self.path / FLOWS


def is_bundle(path: str | os.PathLike) -> bool:
    return (Path(path) / CLUSTER).is_dir()


def load_bundle(path: str | os.PathLike, max_changes: int = DEFAULT_MAX_CHANGES,
                max_age_s: float = BUNDLE_MAX_AGE_S) -> Bundle:
    """Read a bundle folder; warnings (FILE:LINE: why) land in ``state.warnings``."""
    from hubbletui.cluster.snapshot import load_snapshot

    root = Path(path)
    if not root.is_dir():
        raise HubbleTuiError(f"{root}: no such folder (an incident bundle is a folder)")
    if not (root / CLUSTER).is_dir():
        raise HubbleTuiError(f"{root}: not an incident bundle (no {CLUSTER}/ folder)")
    if not (root / FLOWS).is_file():
        raise HubbleTuiError(f"{root}: not an incident bundle (no {FLOWS})")
    state = load_snapshot([str(root / CLUSTER)])
    state.source = f"bundle {root}"
    changes_path = root / CHANGES
    changes = []
    if changes_path.is_file():
        try:
            with changes_path.open(encoding="utf-8", errors="replace") as lines:
                changes, warnings = read_changes(lines, str(changes_path))
        except OSError as exc:
            warnings = [f"{changes_path}: cannot read: {exc.strerror or exc}"]
        state.warnings.extend(warnings)
    start = changes[0].time if changes else 0.0
    timeline = Timeline(state, max_changes=max_changes, max_age_s=max_age_s, clock=lambda: start)
    replay_into(timeline, sorted(changes, key=lambda c: c.time))
    return Bundle(root, state, timeline)


class BundleWriter:
    """Writes a bundle while recording: the starting state at once, each change as it is recorded (one flushed
    line), and the flows through ``flows_path``. The state must not change between the snapshot and the
    timeline's subscription: both happen under the state's lock."""

    def __init__(self, path: str | os.PathLike, state: ClusterState, max_changes: int = DEFAULT_MAX_CHANGES):
        from hubbletui.cluster.snapshot_write import unreadable_lines, write_snapshot

        self.path = Path(path)
        self.changes = 0
        self._stack = ExitStack()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            if (self.path / FLOWS).exists() or (self.path / CHANGES).exists():
                raise HubbleTuiError(f"{self.path}: already holds a bundle; record into a new folder")
            self._log = self._stack.enter_context((self.path / CHANGES).open("w", encoding="utf-8"))
        except OSError as exc:
            raise HubbleTuiError(f"{self.path}: cannot write the bundle: {exc.strerror or exc}") from None
        with state.lock:
            write_snapshot(self.path / CLUSTER, {kind: state.list(kind) for kind in KINDS},
                           unreadable_lines(state.warnings))
            self.timeline = Timeline(state, max_changes=max_changes, max_age_s=BUNDLE_MAX_AGE_S)
        self.timeline.subscribe(self._write)

    @property
    def flows_path(self) -> str:
        return str(self.path / FLOWS)

    def _write(self, entry: TimelineEntry) -> None:
        write_change(self._log, entry)
        self.changes += 1

    def close(self) -> None:
        self.timeline.close()
        self._stack.close()
