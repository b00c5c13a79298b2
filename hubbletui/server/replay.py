"""ReplayServer: a recording served as a Hubble Observer on a port (or unix socket), started and stopped
from any running asyncio program.

    async with ReplayServer(Playlist.load("flows.json", report), speed=10) as server:
        source = GrpcSource(DialOptions(server=server.address), query)
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from hubbletui.errors import HubbleTuiError
from hubbletui.server.guard import Guarded
from hubbletui.server.health import add_health_service
from hubbletui.server.playback import Playback
from hubbletui.server.playlist import Playlist
from hubbletui.server.servicer import ObserverService

# Clients ping idle streams (ours every 60 s) to notice a dead connection; gRPC's default server policy
# would answer pings more frequent than every 5 min with GOAWAY after two strikes.
SERVER_OPTIONS = (
    ("grpc.so_reuseport", 0),  # a second server on a port in use must fail, not share it silently
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.keepalive_permit_without_calls", 1),
)


@dataclass(frozen=True)
class ServerTls:
    cert_file: str
    key_file: str
    client_ca_files: tuple[str, ...] = ()  # given: clients must present a certificate signed by one (mTLS)

    def credentials(self) -> grpc.ServerCredentials:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(self.cert_file, self.key_file)
        except FileNotFoundError as exc:
            raise HubbleTuiError(f"{exc.filename}: no such file") from None
        except ssl.SSLError as exc:
            reason = "the key does not belong to the certificate" if "mismatch" in str(exc).lower() else exc.reason
            raise HubbleTuiError(f"server certificate {self.cert_file} with key {self.key_file}: {reason}") from None
        key, chain = _read(self.key_file), _read(self.cert_file)
        roots = None
        if self.client_ca_files:
            roots = b"".join(_read(path) for path in self.client_ca_files)
            try:
                ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_verify_locations(cadata=roots.decode("ascii", "replace"))
            except ssl.SSLError as exc:
                raise HubbleTuiError(f"--tls-client-ca-files: no usable CA certificate ({exc.reason})") from None
        return grpc.ssl_server_credentials([(key, chain)], root_certificates=roots,
                                           require_client_auth=bool(roots))


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise HubbleTuiError(f"{path}: cannot read: {exc.strerror}") from None


class ReplayServer:
    """``speed``: recorded pace multiplier, None to have everything played at start. ``listen``: host:port
    (port 0 picks a free one; see ``address`` after start) or unix:///path. ``clock``: see Playback.
    ``report`` gets a line for each request the server failed on (the client is told only that it did)."""

    def __init__(self, playlist: Playlist, *, listen: str = "127.0.0.1:0", speed: float | None = 1.0,
                 loop: bool = False, tls: ServerTls | None = None, name: str = "hubbletui-replay", clock=None,
                 report: Callable[[str], None] | None = None):
        self.playlist = playlist
        self.clock = clock  # None: the event loop's (see Playback)
        self.listen = listen
        self.speed = speed
        self.loop = loop
        self.tls = tls
        self.name = name
        self.report = report
        self.address = ""  # what clients dial, once started
        self.listening = ""  # the bound address as given, with the real port
        self.port = 0
        self._server: grpc.aio.Server | None = None
        self.playback: Playback | None = None

    async def start(self) -> str:
        """Bind and serve; the recording starts playing now. Returns the address clients dial."""
        self.playback = Playback(self.playlist, self.speed, self.loop, self.clock)
        service = ObserverService(self.playback, name=self.name, tls=self.tls is not None)
        server = grpc.aio.server(options=SERVER_OPTIONS)
        server.add_generic_rpc_handlers((Guarded(service.handler(), self.report),))
        await add_health_service(server)
        try:
            if self.tls is None:
                port = server.add_insecure_port(self.listen)
            else:
                port = server.add_secure_port(self.listen, self.tls.credentials())
        except RuntimeError:
            port = 0
        if not port:
            raise HubbleTuiError(f"cannot listen on {self.listen}: address in use or not available here")
        await server.start()
        self._server = server
        unix = self.listen.startswith("unix:")
        self.port = 0 if unix else port
        self.listening = self.listen if unix else f"{self.listen.rpartition(':')[0]}:{port}"
        self.address = self.listen if unix else _dialable(self.listening)
        return self.address

    async def stop(self, grace: float | None = None) -> None:
        """Stop serving; open streams are cancelled after ``grace`` seconds (None: at once)."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace)

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()

    async def __aenter__(self) -> ReplayServer:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()


def _dialable(listening: str) -> str:
    """A wildcard listen address (all interfaces) is dialed on loopback."""
    host, _, port = listening.rpartition(":")
    if host in ("0.0.0.0", "[::]", ""):
        host = "127.0.0.1"
    return f"{host}:{port}"
