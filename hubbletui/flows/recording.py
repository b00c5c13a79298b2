"""Reading and writing recordings: jsonpb lines, one GetFlowsResponse per line (what `hubble observe -o jsonpb`
prints, `hubble observe --input-file` reads and the Hubble exporter writes).

Reading never stops at a bad line: it is reported as FILE:LINE with the reason on stderr, counted and skipped.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO

import orjson
from hubbletui.errors import HubbleTuiError
from hubbletui.flows.decode import DecodeError, event_from_line, raw_json, raw_message
from hubbletui.flows.jsonpb import message_to_dict
from hubbletui.flows.model import Event
from hubbletui.untrusted import json_safe

MAX_LINE_BYTES = 1 << 20  # a Hubble flow is a few KiB; a longer line is not one
MAX_REPORTED_ERRORS = 20  # beyond this only the count is reported, so a wrong file does not flood stderr


@dataclass
class ReadStats:
    lines: int = 0
    events: int = 0
    malformed: int = 0
    errors: list[str] = field(default_factory=list)
    truncated: str = ""  # why reading stopped early (a damaged .gz), or ""


def _stderr_reporter(message: str) -> None:
    print(f"hubbletui: {message}", file=sys.stderr)


class RecordingReader:
    """Iterate the events of one recording (a path, '-' for stdin, or an open binary stream)."""

    def __init__(self, source: str | os.PathLike | BinaryIO, report: Callable[[str], None] = _stderr_reporter):
        self.source = source
        if isinstance(source, (str, os.PathLike)):
            self.name = "<stdin>" if source == "-" else os.fspath(source)
        else:
            self.name = str(getattr(source, "name", None) or "<stream>")
        self.stats = ReadStats()
        self._report = report

    def _open(self) -> BinaryIO:
        if not isinstance(self.source, (str, os.PathLike)):
            stream = self.source
        elif self.source == "-":
            stream = sys.stdin.buffer
        else:
            try:
                stream = open(self.source, "rb")
            except FileNotFoundError:
                raise HubbleTuiError(f"{self.name}: no such file") from None
            except IsADirectoryError:
                raise HubbleTuiError(f"{self.name}: is a directory, not a recording") from None
            except OSError as exc:
                raise HubbleTuiError(f"{self.name}: cannot open: {exc.strerror}") from None
        buffered = stream if hasattr(stream, "peek") else io.BufferedReader(stream)
        head = buffered.peek(2)[:2]
        if head == b"\x1f\x8b":
            return gzip.GzipFile(fileobj=buffered)  # type: ignore[return-value]
        return buffered

    def _bad(self, lineno: int, reason: str) -> None:
        self.stats.malformed += 1
        if self.stats.malformed <= MAX_REPORTED_ERRORS:
            message = f"{self.name}:{lineno}: {reason}; line skipped"
            self.stats.errors.append(message)
            self._report(message)
        elif self.stats.malformed == MAX_REPORTED_ERRORS + 1:
            self._report(f"{self.name}: more malformed lines; only their count is reported from here on")

    def _lines(self, stream: BinaryIO) -> Iterator[tuple[bytes, bool]]:
        """(line, whole) pairs; a line longer than MAX_LINE_BYTES comes as its first part with whole=False and
        the rest is skipped unread into memory (``/dev/zero`` or a file without newlines stays bounded)."""
        readline = stream.readline
        while True:
            line = readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            if len(line) <= MAX_LINE_BYTES or line.endswith(b"\n"):
                yield line, True
                continue
            yield line, False
            while line and not line.endswith(b"\n"):
                line = readline(1 << 16)

    def __iter__(self) -> Iterator[Event]:
        stream = self._open()
        stats = self.stats
        lineno = 0
        try:
            for line, whole in self._lines(stream):
                lineno += 1
                if not whole or len(line) > MAX_LINE_BYTES:
                    if b"\x00" in line and stats.events == 0 and lineno <= 2:
                        raise HubbleTuiError(f"{self.name}: binary data, not a jsonpb recording")
                    self._bad(lineno, f"over {MAX_LINE_BYTES:,} bytes, longer than any Hubble event")
                    continue
                if not line.strip():
                    continue
                if b"\x00" in line:
                    if stats.events == 0 and lineno <= 2:
                        raise HubbleTuiError(f"{self.name}: binary data, not a jsonpb recording")
                    self._bad(lineno, "binary data")
                    continue
                stats.lines += 1
                try:
                    event = event_from_line(line)
                except orjson.JSONDecodeError as exc:
                    self._bad(lineno, f"not JSON ({exc.args[0] if exc.args else exc})")
                    continue
                except (DecodeError, ValueError, OverflowError, RecursionError) as exc:
                    self._bad(lineno, str(exc) or type(exc).__name__)
                    continue
                if event is not None:
                    stats.events += 1
                    yield event
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            # a damaged or cut-off .gz: what came before stays read; say where reading stopped and why
            what = "the compressed data ends early (truncated .gz?)" if isinstance(exc, EOFError) else \
                f"corrupt compressed data ({exc})"
            self.stats.malformed += 1
            self.stats.truncated = f"{self.name}:{lineno + 1}: {what}; {stats.events} events read before it"
            self._report(self.stats.truncated)
        except OSError as exc:
            raise HubbleTuiError(f"{self.name}:{lineno + 1}: cannot read: {exc}") from None
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
        if lineno == 0 and not stats.truncated:
            self._report(f"{self.name}: empty recording, no flows")
        elif stats.malformed > MAX_REPORTED_ERRORS:
            self._report(f"{self.name}: {stats.malformed} malformed lines skipped in all")


def read_events(source, report: Callable[[str], None] = _stderr_reporter) -> Iterator[Event]:
    """Events of a recording; bad lines are reported through ``report`` and skipped."""
    return iter(RecordingReader(source, report))


# ---------------------------------------------------------------------------------------------------------
# writing


def event_to_dict(event: Event) -> dict:
    """The GetFlowsResponse JSON object (proto field names) for an event, whatever it was decoded from."""
    obj = raw_json(event)
    if obj is not None:
        return obj
    return message_to_dict(raw_message(event))


def event_to_jsonpb(event: Event) -> bytes:
    """One jsonpb line; controls and line separators in its strings written as escapes (the same JSON value)."""
    if type(event.raw) is bytes and event.raw[:1] == b"{":
        return json_safe(event.raw) + b"\n"
    return json_safe(orjson.dumps(event_to_dict(event))) + b"\n"


def write_jsonpb(events: Iterable[Event], out: BinaryIO | TextIO, flush_each: bool = False) -> int:
    """Write events as jsonpb lines; returns how many. ``flush_each`` bounds what a crash can lose to one line."""
    binary = out.buffer if hasattr(out, "buffer") else out
    count = 0
    for event in events:
        binary.write(event_to_jsonpb(event))
        count += 1
        if flush_each:
            binary.flush()
    return count
