"""The `hubbletui` command: a click group whose subcommands load lazily.

Headless commands must never import Textual (tests check this), so every subcommand lives in its own
module and is imported only when invoked. A bare `hubbletui [options]` means `hubbletui tui [options]`; a first
word that is not an option must name a command (the TUI takes no arguments, so a typo is never taken for one).
"""

from __future__ import annotations

import errno
import importlib
import os
import sys

import click

from hubbletui import __version__
from hubbletui.errors import ExitCode, HubbleTuiError

# name -> "module:attribute"; the order is the order `--help` lists them in
COMMANDS = {
    "tui": "hubbletui.cli.tui_cmd:tui",
    "demo": "hubbletui.cli.tui_cmd:demo",
    "pick": "hubbletui.cli.tui_cmd:pick",
    "observe": "hubbletui.cli.observe:observe",
    "record": "hubbletui.cli.record:record",
    "serve": "hubbletui.cli.serve:serve",
    "trace": "hubbletui.cli.trace:trace",
    "explain": "hubbletui.cli.explain:explain",
    "suggest": "hubbletui.cli.suggest:suggest",
    "snapshot": "hubbletui.cli.snapshot:snapshot",
    "verify": "hubbletui.cli.verify:verify",
}
DEFAULT_COMMAND = "tui"

SHORT_HELP = {
    "tui": "Open the TUI on a live Hubble server or a recording (the default).",
    "demo": "Run the built-in FoundationDB-exporter scenario: no cluster needed.",
    "pick": "Open the TUI; on exit write the fixes you marked to stdout.",
    "observe": "Print flows from a recording or a Hubble server, as `hubble observe` does.",
    "record": "Append flows from a Hubble server to a jsonpb recording.",
    "serve": "Serve a recording over gRPC as a Hubble Observer (any Hubble client can use it).",
    "trace": "Would this connection be allowed? Verdict per layer, with the nearest rules.",
    "explain": "Explain every dropped flow of a recording against the cluster's policies.",
    "suggest": "Suggest the smallest checked fix for every group of dropped flows.",
    "snapshot": "Write the cluster's policy-relevant objects to a folder for offline use.",
    "verify": "Would a policy change break recorded traffic? Replays it before and after (a CI gate).",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # listing must not import the subcommands (that would import Textual for `--help`)
        with formatter.section("Commands"):
            formatter.write_dl([(name, SHORT_HELP[name]) for name in COMMANDS])

    def resolve_command(self, ctx: click.Context, args: list[str]):
        if args and args[0] not in COMMANDS and not args[0].startswith("-"):
            # click's own error and "did you mean" need the names; ours are lazy, so click's list is empty
            raise click.exceptions.NoSuchCommand(args[0], possibilities=list(COMMANDS), ctx=ctx)
        return super().resolve_command(ctx, args)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        wants_group = not args or args[0] in ("--help", "-h", "--version")
        if not wants_group and args[0].startswith("-"):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]},
             invoke_without_command=True)
@click.version_option(__version__, prog_name="hubbletui")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Find out why Cilium or Istio dropped a flow, and get the smallest safe fix.

    Run without a command to open the TUI (`hubbletui tui`). Exit codes: 0 ok, 1 error,
    2 usage, 3 nothing to fix, 4 server or cluster unreachable, 130 interrupted.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(cli.get_command(ctx, DEFAULT_COMMAND))


def main(argv: list[str] | None = None) -> int:
    """Console entry point: one line on stderr per failure, documented exit codes, quiet on `| head`.

    A subcommand may return an ExitCode (e.g. `suggest` when there is nothing to fix).
    """
    if sys.stdout is None:  # started with fd 1 closed (`>&-`): a file opened later would take its place
        print("hubbletui: cannot write output: stdout is closed", file=sys.stderr)
        return int(ExitCode.ERROR)
    try:
        result = cli.main(args=argv, prog_name="hubbletui", standalone_mode=False)
        code = int(result) if isinstance(result, int) else ExitCode.OK
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except SystemExit as exc:
        # click turns a closed stdout (EPIPE, `| head`) into exit(1) after pacifying the streams: that is a
        # reader that has seen enough, not an error
        pacified = isinstance(sys.stdout, click.utils.PacifyFlushWrapper)
        code = ExitCode.OK if pacified else (exc.code if isinstance(exc.code, int) else ExitCode.ERROR)
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        code = ExitCode.INTERRUPTED
    except HubbleTuiError as exc:
        print(f"hubbletui: {exc}", file=sys.stderr)
        code = exc.exit_code
    except BrokenPipeError:
        code = ExitCode.OK
    except OSError as exc:
        if exc.errno not in _WRITE_FAILURES:
            raise
        # a full disk, a quota, a dead terminal: the output is incomplete, which the exit code must say
        where = f" {exc.filename}" if exc.filename else " output"
        print(f"hubbletui: cannot write{where}: {exc.strerror or exc}", file=sys.stderr)
        code = ExitCode.ERROR
    _silence_stdout_if_broken()
    return int(code)


_WRITE_FAILURES = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EBADF})


def _silence_stdout_if_broken() -> None:
    # after a reader such as `head` closed the pipe (or the disk filled), the interpreter's final flush would
    # raise again and print a second complaint
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def run() -> None:
    sys.exit(main())
