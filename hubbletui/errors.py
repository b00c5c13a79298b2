"""Errors the program reports to a person as one line, and the exit codes they map to."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented in README.md; scripts depend on these numbers."""

    OK = 0
    ERROR = 1  # bad input, failed to load, anything reported as one line on stderr
    USAGE = 2  # wrong flags or arguments (click's own convention)
    NOTHING_TO_FIX = 3  # suggest/explain: the input held no drop to act on
    UNREACHABLE = 4  # the Hubble server or the Kubernetes API could not be reached
    INCOMPLETE = 5  # trace/explain/suggest answered, but from a cluster state that lacks what answers depend on
    BREAKS = 6  # verify: the change would deny a connection the recording shows working
    INTERRUPTED = 130  # Ctrl-C


class HubbleTuiError(Exception):
    """An expected failure: its message is the one line printed on stderr."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, exit_code: ExitCode | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UnreachableError(HubbleTuiError):
    exit_code = ExitCode.UNREACHABLE
