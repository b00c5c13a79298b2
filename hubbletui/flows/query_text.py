"""The TUI's `/` filter: words people type, turned into predicates over rows, pods and flows.

    fdb                 free text, anywhere in the row (case-insensitive); several words must all match
    !kube-dns           a word that must not appear
    ns:database         either side in this namespace (repeat to allow several)
    pod:fdb-exporter    either side's pod or workload name contains this
    verdict:dropped     FORWARDED, DROPPED, AUDIT, ... by prefix (verdict:drop), or verdict:refused for
                        connections the mesh refuses
    port:4500           the connection's port

Only these prefixes are special: anything else with a colon (a URL, an IPv6 address) is free text.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass

from hubbletui.flows.conn import flow_port
from hubbletui.flows.decode import dns_names
from hubbletui.flows.enums import VERDICTS
from hubbletui.flows.model import Flow
from hubbletui.flows.store import PodDrops, Row

REFUSED = "REFUSED"  # not a Hubble verdict: Cilium forwarded it, the mesh refused it
_VERDICT_WORDS = (*VERDICTS, REFUSED)
_PREFIXES = {"ns": "ns", "namespace": "ns", "pod": "pod", "verdict": "verdict", "port": "port"}


class QueryError(ValueError):
    """A filter that cannot be understood; the message says which word and why."""


@dataclass(frozen=True)
class TextQuery:
    text: tuple[str, ...] = ()  # lower-case words that must all appear
    not_text: tuple[str, ...] = ()
    namespaces: frozenset[str] = frozenset()
    pods: tuple[str, ...] = ()  # lower-case substrings, any may match
    verdicts: frozenset[str] = frozenset()
    ports: frozenset[int] = frozenset()
    source: str = ""  # what the person typed

    @property
    def is_empty(self) -> bool:
        return not (self.text or self.not_text or self.namespaces or self.pods or self.verdicts or self.ports)

    def _text_ok(self, haystack: str) -> bool:
        return all(w in haystack for w in self.text) and not any(w in haystack for w in self.not_text)

    def match_row(self, row: Row) -> bool:
        if self.namespaces and not (set(row.namespaces) & self.namespaces):
            return False
        if self.verdicts:
            verdicts = {row.key.verdict, REFUSED} if row.refusal is not None else {row.key.verdict}
            if not verdicts & self.verdicts:
                return False
        if self.ports and row.key.port.number not in self.ports:
            return False
        if self.pods:
            names = " ".join((row.key.src, row.key.dst, *row.pods)).lower()
            if not any(p in names for p in self.pods):
                return False
        return self._text_ok(row.search_text)

    def match_pod(self, pod: PodDrops) -> bool:
        if self.namespaces and pod.namespace not in self.namespaces:
            return False
        if self.verdicts:
            verdicts = {"DROPPED"} | ({REFUSED} if pod.refused else set()) | ({"AUDIT"} if pod.audited else set())
            if not verdicts & self.verdicts:
                return False
        if self.ports and not any(port.number in self.ports for _, port, _ in pod.peers):
            return False
        if self.pods and not any(p in pod.search_text for p in self.pods):
            return False
        return self._text_ok(pod.search_text)

    def match_flow(self, flow: Flow, refused: Callable[[Flow], bool] | None = None) -> bool:
        src, dst = flow.source, flow.destination
        if self.namespaces and src.namespace not in self.namespaces and dst.namespace not in self.namespaces:
            return False
        if self.verdicts:
            verdicts = {flow.verdict}
            if refused is not None and REFUSED in self.verdicts and refused(flow):
                verdicts.add(REFUSED)
            if not verdicts & self.verdicts:
                return False
        if self.ports and flow.dst_port not in self.ports and flow.src_port not in self.ports:
            return False
        if self.pods:
            names = f"{src.pod} {src.workload_name} {dst.pod} {dst.workload_name}".lower()
            if not any(p in names for p in self.pods):
                return False
        if not (self.text or self.not_text):
            return True
        return self._text_ok(flow_search_text(flow))


def flow_search_text(flow: Flow) -> str:
    l7 = flow.l7
    src_names, dst_names = dns_names(flow)
    return " ".join((flow.source.ref, flow.destination.ref, flow.source.workload_name,
                     flow.destination.workload_name, flow_port(flow).text, flow.verdict, flow.drop_reason_name,
                     flow.direction, *src_names, *dst_names, l7.target if l7 is not None else "")).lower()


def _verdict(word: str) -> str:
    upper = word.upper()
    matches = [v for v in _VERDICT_WORDS if v.startswith(upper)] if upper else []
    if upper in _VERDICT_WORDS:
        return upper
    if len(matches) != 1:
        raise QueryError(f"verdict:{word}: say one of {', '.join(v.lower() for v in _VERDICT_WORDS)}")
    return matches[0]


def parse_query(text: str) -> TextQuery:
    """Parse what was typed after `/`; an empty string is the empty query (everything matches)."""
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()  # an unbalanced quote: take the words as they are
    plain, negated, pods = [], [], []
    namespaces: set[str] = set()
    verdicts: set[str] = set()
    ports: set[int] = set()
    for word in words:
        prefix, colon, value = word.partition(":")
        kind = _PREFIXES.get(prefix.lower()) if colon else None
        if kind is None:
            if word.startswith("!") and len(word) > 1:
                negated.append(word[1:].lower())
            else:
                plain.append(word.lower())
            continue
        if not value:
            raise QueryError(f"{word}: give a value after the colon ({prefix}:NAME)")
        if kind == "ns":
            namespaces.add(value)
        elif kind == "pod":
            pods.append(value.lower())
        elif kind == "verdict":
            verdicts.add(_verdict(value))
        elif kind == "port":
            if not value.isdigit() or not 0 < int(value) < 65536:
                raise QueryError(f"{word}: a port is a number from 1 to 65535")
            ports.add(int(value))
    return TextQuery(tuple(plain), tuple(negated), frozenset(namespaces), tuple(pods), frozenset(verdicts),
                     frozenset(ports), text.strip())
