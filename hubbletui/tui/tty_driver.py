"""Textual's Linux driver on the controlling terminal, whatever stdin, stdout and stderr are.

`hubbletui pick ... > fixes.yaml` redirects stdout, and `... 2>log` or `cat flows | hubbletui pick --input-file -`
take away stderr or stdin: Textual draws on stderr, reads stdin and asks stdout for the terminal size. This
driver opens /dev/tty for all three, so the TUI draws where the person is and stdout stays data.
"""

from __future__ import annotations

import os

from textual.drivers.linux_driver import LinuxDriver


class TtyDriver(LinuxDriver):
    def __init__(self, app, *, debug: bool = False, mouse: bool = True, size: tuple[int, int] | None = None):
        super().__init__(app, debug=debug, mouse=mouse, size=size)
        self._tty_out = open("/dev/tty", "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._tty_in = os.open("/dev/tty", os.O_RDONLY)
        self._file = self._tty_out
        self.fileno = self._tty_in
        self.input_tty = True

    def _get_terminal_size(self) -> tuple[int, int]:
        try:
            size = os.get_terminal_size(self._tty_out.fileno())
            return size.columns or 80, size.lines or 25
        except OSError:
            return super()._get_terminal_size()

    def close(self) -> None:
        super().close()
        try:
            self._tty_out.close()
        finally:
            os.close(self._tty_in)


def needs_tty_driver() -> bool:
    """True when one of the standard streams Textual uses is not the terminal."""
    import sys

    streams = (sys.__stdin__, sys.__stdout__, sys.__stderr__)
    return not all(s is not None and s.isatty() for s in streams)
