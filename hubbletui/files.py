"""Writing a file so that a reader never sees half of it: a temporary file in the same folder, flushed to disk,
then renamed over the target (a rename within one file system is atomic). Used by `suggest --out-dir` and the
TUI's `w` key."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from hubbletui.errors import HubbleTuiError


def write_atomic(path: str | os.PathLike, data: str | bytes, mode: int = 0o644) -> Path:
    """Replace ``path`` with ``data`` (str is written as UTF-8); the old file stays whole if anything fails."""
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise HubbleTuiError(f"cannot write in {target.parent}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise HubbleTuiError(f"cannot write {target}: {exc.strerror or exc}") from None
        raise
    _sync_dir(target.parent)
    return target


def _sync_dir(folder: Path) -> None:
    # the rename itself is durable only once the folder's entry is on disk (POSIX; Windows has no such handle)
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
