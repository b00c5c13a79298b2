"""A Hubble server as the one-shot commands (observe, record, suggest) read it: blocking, with each retry and
recovery said on stderr, and an unreachable server failing at once."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

from hubbletui.cli.flow_options import ServerFlags
from hubbletui.errors import HubbleTuiError
from hubbletui.flows.model import Event
from hubbletui.flows.request import FlowQuery
from hubbletui.sources.base import FAILED, RETRYING, STREAMING, SourceState
from hubbletui.sources.grpc_client import MAX_FLOW_BYTES, STALL_TIMEOUT, GrpcSource, RetryPolicy


def server_events(flags: ServerFlags, server: str | None, query: FlowQuery) -> Iterator[Event]:
    return blocking_events(cli_source(flags, server, query))


def cli_source(flags: ServerFlags, server: str | None, query: FlowQuery) -> GrpcSource:
    """A GrpcSource for one-shot use: a broken follow stream is retried for as long as it takes, a one-shot
    request a few times rather than leaving a script hanging."""
    options = flags.dial_options(server)
    source = GrpcSource(options, query, fail_fast=True, retry=RetryPolicy(max_attempts=None if query.follow else 5),
                        stall_timeout=flags.stall_timeout or STALL_TIMEOUT)
    if options.allow_insecure:
        _say(f"--tls-allow-insecure: the certificate of {options.address.text} is trusted without verification; "
             "the first one it shows is the only one accepted on reconnect")
    return source


def blocking_events(source: GrpcSource) -> Iterator[Event]:
    from hubbletui.sources.blocking import iterate_blocking

    try:
        yield from iterate_blocking(source, _state_reporter(source))
    finally:
        stats = source.stats
        if stats.malformed:
            big = f", {stats.oversized} of them over {MAX_FLOW_BYTES >> 20} MiB" if stats.oversized else ""
            _say(f"{source.dial.address.text}: {stats.malformed} malformed messages skipped{big} "
                 f"(the first: {stats.first_malformed})")


def _state_reporter(source: GrpcSource) -> Callable[[SourceState], None]:
    recovering = False

    def report(state: SourceState) -> None:
        nonlocal recovering
        if state.state == FAILED:
            raise source.failure or HubbleTuiError(state.detail)
        if state.state == STREAMING:
            for notice in source.take_notices():
                _say(notice)
        if state.state == RETRYING:
            recovering = True
            _say(f"{source.dial.address.text}: {state.detail}")
        elif state.state == STREAMING and recovering:
            recovering = False
            _say(f"streaming again from {state.detail}")

    return report


def _say(message: str) -> None:
    print(f"hubbletui: {message}", file=sys.stderr, flush=True)
