"""Every key and `:` command in one table: the help screen shows it, tests check the bindings match it."""

from __future__ import annotations

# (where, key, what)
KEYS: list[tuple[str, str, str]] = [
    ("anywhere", "?", "this help"),
    ("anywhere", "/", "filter: words, !word, ns:NAME, pod:NAME, verdict:dropped|forwarded|refused, port:N"),
    ("anywhere", ":", "command (see below)"),
    ("anywhere", "space", "pause the view / follow again (flows keep being counted while paused)"),
    ("anywhere", "ctrl+p", "command palette"),
    ("anywhere", "q", "quit (pick: write the marked fixes to stdout)"),
    ("main", "1 / 2", "drops by pod / flows"),
    ("main", "3", "the cluster's changes and the drops each resolved (a bundle, the demo)"),
    ("main", "enter", "drill in: the drops of the pod, row or change, explained, with fixes"),
    ("main", "p", "policy view of the selected pod"),
    ("main", "esc", "clear the filter"),
    ("flows", "s", "sort rows by count or by last seen"),
    ("flows", "l", "show or hide the raw log"),
    ("drop detail", "up / down", "choose a drop group, then a suggestion (tab moves between the lists)"),
    ("drop detail", "w", "write the selected fix to a file (atomically)"),
    ("drop detail", "c", "copy the selected fix (terminal clipboard, OSC 52)"),
    ("drop detail", "f", "next format of the fix: cilium, k8s, istio"),
    ("drop detail", "d", "show the fix as YAML or as a patch"),
    ("drop detail", "m", "mark or unmark the fix for `hubbletui pick`"),
    ("drop detail / policy", "esc", "back"),
]

COMMANDS: list[tuple[str, str]] = [
    (":ns NAME", "show only namespace NAME (:ns alone shows all)"),
    (":pod NAME", "show only pods whose name contains NAME (:pod alone shows all)"),
    (":drops, :flows", "switch view"),
    (":changes", "the cluster's changes (with a history)"),
    (":policy NS/POD", "policy view of a pod"),
    (":pause, :follow", "pause the view or follow again"),
    (":help", "this help"),
    (":q", "quit"),
]
