"""--tls-allow-insecure with a certificate gRPC will not accept at all (expired, not yet valid).

grpcio always checks a certificate's dates, and has no switch to skip verification; the hubble CLI's flag
skips all of it. For a certificate that is out of date, the one case where trusting the certificate itself
(dial.py) is not enough, this carries gRPC's connection through Python's own TLS instead: gRPC speaks plain
HTTP/2 to a unix socket in a private folder (mode 0700: only this user can reach it), and each connection
made there is carried over TLS to the server, with no check but one: the server must present the pinned
certificate. The bytes pass through Python, which costs throughput; only this case pays it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import ssl
import tempfile

CHUNK = 1 << 16


class TlsBridge:
    """``connect()`` opens the TLS connection to the server (a coroutine returning reader, writer); ``check``
    gets the DER certificate the server presented and raises if it is not the pinned one. ``failure``: why
    the last carried connection failed (for the message gRPC cannot give: it only sees the socket close)."""

    def __init__(self, connect, check):
        self._connect = connect
        self._check = check
        self._dir = ""
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self.failure: Exception | None = None

    async def start(self) -> str:
        """Listen; returns the target gRPC dials."""
        self._dir = tempfile.mkdtemp(prefix="hubbletui-tls-")
        path = os.path.join(self._dir, "bridge.sock")
        self._server = await asyncio.start_unix_server(self._carry, path)
        return f"unix:{path}"

    async def _carry(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        up_writer = None
        try:
            up_reader, up_writer = await self._connect()
            self._check(up_writer.get_extra_info("ssl_object").getpeercert(binary_form=True) or b"")
            # TLS has no half-close: when either side ends, the connection is over
            pumps = [asyncio.ensure_future(_pump(reader, up_writer)), asyncio.ensure_future(_pump(up_reader, writer))]
            try:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
        except asyncio.CancelledError:
            pass  # close(): asyncio's stream server would log a connection task that ends cancelled
        except Exception as exc:  # no connection (OSError, SSLError, timeout), or ``check`` refused it
            self.failure = exc
        finally:
            self._tasks.discard(task)
            for w in (writer, up_writer):
                if w is not None:
                    w.close()

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await server.wait_closed()
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = ""


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (OSError, ssl.SSLError):
        pass  # one side went away: closing both (in _carry) tells the other
