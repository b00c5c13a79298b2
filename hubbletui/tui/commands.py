"""`:` commands and the command palette's entries (both call the same app methods).

Pod and namespace names come from the network, so palette entries are built as plain `Content`, never
through markup (Textual's own highlighter would parse the candidate as markup).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

from hubbletui.untrusted import printable

if TYPE_CHECKING:
    from hubbletui.tui.app import HubbleApp

MAX_PALETTE_PODS = 50


class CommandError(ValueError):
    pass


def execute(app: HubbleApp, line: str) -> None:
    """Run one `:` command; raises CommandError with a one-line message for anything not understood."""
    words = line.strip().lstrip(":").split()
    if not words:
        return
    name, args = words[0].lower(), words[1:]
    if name in ("q", "q!", "quit", "exit"):
        app.exit(app.picked())
    elif name in ("ns", "namespace"):
        app.set_scope(namespace="" if not args or args[0] in ("all", "-A", "*") else args[0])
    elif name in ("pod", "po", "pods"):
        app.set_scope(pod="" if not args or args[0] in ("all", "*") else args[0])
    elif name in ("drops", "flows", "changes"):
        app.show_tab(name)
    elif name == "policy":
        if not args:
            raise CommandError(":policy needs a pod: :policy NAMESPACE/POD")
        app.open_policy(args[0])
    elif name == "pause":
        app.set_following(False)
    elif name == "follow":
        app.set_following(True)
    elif name in ("help", "h", "?"):
        app.action_help()
    else:
        raise CommandError(f"unknown command :{printable(name)} (try :ns, :pod, :drops, :flows, :changes, :policy, :q)")


class HubbleCommands(Provider):
    """Views, pausing, filters per namespace seen, and the pods with drops."""

    def _entries(self) -> list[tuple[str, Callable[[], object], str]]:
        app: HubbleApp = self.app  # type: ignore[assignment]
        entries: list[tuple[str, Callable[[], object], str]] = [
            ("Show drops by pod", partial(app.show_tab, "drops"), "the pods whose connections are dropped"),
            ("Show flows", partial(app.show_tab, "flows"), "aggregated flows and the raw log"),
            *([("Show cluster changes", partial(app.show_tab, "changes"), "what changed, when, which drops it "
                "resolved")] if app.timeline is not None else []),
            ("Pause or follow", app.action_toggle_follow, "freeze the view; flows are still counted"),
            ("Clear filter", partial(app.set_filter, ""), "show everything again"),
            ("Help: keys and commands", app.action_help, ""),
        ]
        namespaces = sorted({ns for pod in app.store.pods.values() for ns in (pod.namespace,) if ns}
                            | {ns for key in list(app.store.rows)[-2000:] for ns in _namespaces(key)})
        for ns in namespaces[:100]:
            entries.append((f"Namespace {ns}", partial(app.set_scope, namespace=ns), "show only this namespace"))
        for pod in app.store.ranked_pods(MAX_PALETTE_PODS):
            entries.append((f"Drops of {pod.ref}", partial(app.open_pod, pod.ref), f"{pod.total:,} drops"))
            entries.append((f"Policy of {pod.ref}", partial(app.open_policy, pod.ref), "what selects it"))
        return entries

    async def discover(self) -> Hits:
        for text, callback, help_text in self._entries()[:5]:
            yield DiscoveryHit(Content(printable(text)), callback, text=text, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, callback, help_text in self._entries():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, Content(printable(text)), callback, text=text, help=help_text)


def _namespaces(key) -> tuple[str, ...]:
    return tuple(ref.split("/", 1)[0] for ref in (key.src, key.dst) if "/" in ref)
