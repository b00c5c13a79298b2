"""Reaching a Hubble server: the address forms and TLS flags of the hubble CLI, and gRPC channels built from them.

A channel is made inside the running event loop (grpc.aio binds it to the loop), one per connection attempt,
so that every attempt starts from a fresh connection rather than from a channel's own reconnect backoff.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
from dataclasses import dataclass
from typing import NamedTuple

import grpc

from hubbletui import __version__
from hubbletui.errors import HubbleTuiError, UnreachableError
from hubbletui.sources import DEFAULT_SERVER
from hubbletui.untrusted import printable

MAX_RECEIVE_BYTES = 256 << 20

# Keepalive: an idle stream (no flow matches for minutes) must not be a dead one we wait on forever. A ping
# every 60 s with no data, answered within 20 s, or the connection is declared broken and we reconnect.
# Servers that forbid pings this often (Go's default policy allows one per 5 min) answer with GOAWAY
# "too_many_pings"; gRPC then doubles its interval and our reconnect-and-resume covers the break.
CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.primary_user_agent", f"hubbletui/{__version__}"),
    # gRPC's default of 4 MiB ends the stream at the first bigger flow (a huge L7 header set, say), and a
    # resume would meet it again forever. Messages up to this size arrive and are judged by the client
    # (MAX_FLOW_BYTES in grpc_client.py: skipped and counted); only beyond it does the stream break.
    ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
)


@dataclass(frozen=True)
class ServerAddress:
    text: str  # as given, for messages
    target: str  # what gRPC dials: "host:port" or "unix:/path"
    host: str  # "" for a unix socket
    port: int
    tls: bool  # the address said tls://
    unix_path: str = ""


def parse_address(text: str) -> ServerAddress:
    """host:port, [v6]:port, tls://host:port or unix:///path (unix:/path and unix://path as well)."""
    raw = text.strip()
    if not raw:
        raise HubbleTuiError("--server: empty address")
    tls = False
    rest = raw
    if rest.startswith("unix:"):
        path = rest[5:]
        path = "/" + path.lstrip("/") if path.startswith("//") or path.startswith("/") else path
        if not path or path == "/":
            raise HubbleTuiError(f"--server {raw}: no socket path (unix:///var/run/cilium/hubble.sock)")
        return ServerAddress(raw, f"unix:{path}", "", 0, False, path)
    if "://" in rest:
        scheme, _, rest = rest.partition("://")
        if scheme != "tls":
            raise HubbleTuiError(f"--server {raw}: unknown scheme {scheme}:// (use host:port, tls://host:port "
                                 "or unix:///path)")
        tls = True
    host, port = _split_host_port(rest, raw)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return ServerAddress(raw, target, host, port, tls)


def _split_host_port(text: str, raw: str) -> tuple[str, int]:
    if text.startswith("["):
        host, bracket, tail = text[1:].partition("]")
        if not bracket or not tail.startswith(":"):
            raise HubbleTuiError(f"--server {raw}: expected [ipv6]:port")
        port_text = tail[1:]
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon or not host:
            raise HubbleTuiError(f"--server {raw}: expected host:port (Hubble Relay listens on 4245)")
        if ":" in host:
            raise HubbleTuiError(f"--server {raw}: write an IPv6 address as [addr]:port")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise HubbleTuiError(f"--server {raw}: {port_text!r} is not a port number")
    return host, int(port_text)


@dataclass(frozen=True)
class TlsMaterial:
    """PEM bytes read and checked before any connection, so bad files fail with their own name."""

    root_certificates: bytes | None
    private_key: bytes | None
    certificate_chain: bytes | None


@dataclass(frozen=True)
class DialOptions:
    server: str = DEFAULT_SERVER
    tls: bool = False
    ca_files: tuple[str, ...] = ()
    client_cert_file: str | None = None
    client_key_file: str | None = None
    server_name: str | None = None
    allow_insecure: bool = False
    timeout: float = 5.0  # seconds to establish a connection

    @property
    def address(self) -> ServerAddress:
        return parse_address(self.server)

    @property
    def use_tls(self) -> bool:
        return self.tls or self.address.tls

    def check(self) -> TlsMaterial | None:
        """Validate the flags and read the TLS files; None for a plaintext connection."""
        address = self.address
        if self.timeout <= 0:
            raise HubbleTuiError("--timeout must be a positive number of seconds")
        if bool(self.client_cert_file) != bool(self.client_key_file):
            raise HubbleTuiError("--tls-client-cert-file and --tls-client-key-file go together (mTLS needs both)")
        if not self.use_tls:
            given = [flag for flag, value in (("--tls-ca-cert-files", self.ca_files),
                                              ("--tls-client-cert-file", self.client_cert_file),
                                              ("--tls-server-name", self.server_name),
                                              ("--tls-allow-insecure", self.allow_insecure)) if value]
            if given:
                raise HubbleTuiError(f"{given[0]} needs TLS: add --tls or write the server as tls://{address.text}")
            return None
        roots = None
        if self.ca_files:
            roots = b"".join(_read_pem(path, "--tls-ca-cert-files") for path in self.ca_files)
            _check_ca_pem(roots, self.ca_files)
        key = chain = None
        if self.client_cert_file:
            chain = _read_pem(self.client_cert_file, "--tls-client-cert-file")
            key = _read_pem(self.client_key_file, "--tls-client-key-file")
            _check_key_pair(self.client_cert_file, self.client_key_file)
        return TlsMaterial(roots, key, chain)


def _read_pem(path: str, flag: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise HubbleTuiError(f"{flag} {path}: no such file") from None
    except OSError as exc:
        raise HubbleTuiError(f"{flag} {path}: cannot read: {exc.strerror}") from None
    if b"-----BEGIN " not in data:
        raise HubbleTuiError(f"{flag} {path}: not a PEM file")
    return data if data.endswith(b"\n") else data + b"\n"


def _check_ca_pem(data: bytes, paths: tuple[str, ...]) -> None:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=data.decode("ascii", "replace"))
    except ssl.SSLError as exc:
        raise HubbleTuiError(f"--tls-ca-cert-files {' '.join(paths)}: no usable CA certificate ({exc.reason})") \
            from None


def _check_key_pair(cert_file: str, key_file: str) -> None:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        reason = "the key does not belong to the certificate" if "mismatch" in str(exc).lower() else exc.reason
        raise HubbleTuiError(f"client certificate {cert_file} with key {key_file}: {reason}") from None


# ---------------------------------------------------------------------------------------------------------
# channels


class ConnectFailed(Exception):
    """No usable connection; the message is the reason, ready for a person."""


class CertificateChanged(ConnectFailed):
    """--tls-allow-insecure: the server presents another certificate than the one first trusted this session.
    Not worth retrying: the same server answers the same way, and a different one must not be trusted."""


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()[:16]


class CertificatePin:
    """--tls-allow-insecure for one session: the certificate the first connection saw is the only one every
    later connection accepts. Without it, each reconnect would trust whatever answers (a different server
    that took the address, say) without a word."""

    def __init__(self) -> None:
        self.der: bytes | None = None
        self.notices: list[str] = []  # for the front end to say once: an out-of-date certificate accepted

    def check(self, der: bytes, address: str) -> None:
        if self.der is None:
            self.der = der
        elif der != self.der:
            raise CertificateChanged(
                f"TLS: {address} now presents a different certificate (SHA-256 {fingerprint(der)}...) from the one "
                f"trusted when this session began (SHA-256 {fingerprint(self.der)}...); refused: "
                "--tls-allow-insecure trusts only the first (start again to trust the new one)")


class Connection:
    """A READY channel, and the TLS bridge it goes through if it needs one; ``close`` closes both."""

    __slots__ = ("channel", "_bridge")

    def __init__(self, channel: grpc.aio.Channel, bridge=None):
        self.channel = channel
        self._bridge = bridge

    async def close(self) -> None:
        await self.channel.close()
        if self._bridge is not None:
            await self._bridge.close()


async def open_channel(opts: DialOptions, material: TlsMaterial | None,
                       pin: CertificatePin | None = None) -> Connection:
    """A channel that has reached READY within ``opts.timeout``; raises ConnectFailed with the reason.
    ``pin``: the session's, with --tls-allow-insecure (None: this connection trusts what it sees)."""
    address = opts.address
    options = list(CHANNEL_OPTIONS)
    bridge = None
    if material is None:
        channel = grpc.aio.insecure_channel(address.target, options=options)
    else:
        roots = material.root_certificates
        name = opts.server_name
        if opts.allow_insecure:
            try:
                presented = await asyncio.wait_for(
                    asyncio.to_thread(fetch_unverified_certificate, address, opts, opts.timeout), opts.timeout * 2)
            except asyncio.TimeoutError:
                raise ConnectFailed(f"no TLS handshake within {opts.timeout:g} s") from None
            pin = pin or CertificatePin()
            first = pin.der is None
            pin.check(presented.der, address.text)
            roots, name = ssl.DER_cert_to_PEM_cert(pin.der).encode(), presented.name
            if presented.out_of_date:
                from hubbletui.sources.tls_bridge import TlsBridge

                if first:
                    pin.notices.append(f"TLS: the certificate of {address.text}: {presented.out_of_date}; accepted "
                                       "under --tls-allow-insecure, as hubble does")
                bridge = TlsBridge(lambda: _unverified_connection(address, opts),
                                   lambda der: pin.check(der, address.text))
                target = await bridge.start()
                channel = grpc.aio.insecure_channel(target, options=options + [("grpc.default_authority",
                                                                                 address.target)])
        if bridge is None:
            if name:
                options.append(("grpc.ssl_target_name_override", name))
            credentials = grpc.ssl_channel_credentials(roots, material.private_key, material.certificate_chain)
            channel = grpc.aio.secure_channel(address.target, credentials, options=options)
    try:
        await _wait_ready(channel, opts.timeout)
    except ConnectFailed as exc:
        failure = bridge.failure if bridge is not None else None
        reason = str(exc) or (_bridge_error(failure) if failure else await _last_error(channel, opts))
        await Connection(channel, bridge).close()
        raise (failure if isinstance(failure, CertificateChanged) else ConnectFailed(reason)) from None
    except BaseException:
        await Connection(channel, bridge).close()
        raise
    return Connection(channel, bridge)


def _bridge_error(exc: Exception) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "no TLS handshake in time"
    return f"TLS connection failed: {exc}"


async def _wait_ready(channel: grpc.aio.Channel, timeout: float) -> None:
    """Wait for READY; give up at the first TRANSIENT_FAILURE (refused, TLS failure) instead of at the timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    state = channel.get_state(try_to_connect=True)
    while state != grpc.ChannelConnectivity.READY:
        if state in (grpc.ChannelConnectivity.TRANSIENT_FAILURE, grpc.ChannelConnectivity.SHUTDOWN):
            raise ConnectFailed("")
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise ConnectFailed(f"no connection within {timeout:g} s")
        try:
            await asyncio.wait_for(channel.wait_for_state_change(state), remaining)
        except asyncio.TimeoutError:
            raise ConnectFailed(f"no connection within {timeout:g} s") from None
        state = channel.get_state(try_to_connect=True)


async def _last_error(channel: grpc.aio.Channel, opts: DialOptions) -> str:
    # a call that does not wait for READY fails at once with the channel's last connection error
    call = channel.unary_unary("/observer.Observer/ServerStatus", request_serializer=None, response_deserializer=None)
    try:
        await call(b"", timeout=min(opts.timeout, 2.0), wait_for_ready=False)
    except grpc.aio.AioRpcError as exc:
        return explain_details(exc.details() or "", opts)
    return "the connection failed"


class Presented(NamedTuple):
    der: bytes  # the server's certificate
    name: str  # a name it is valid for
    out_of_date: str  # "certificate has expired", "... not yet valid"; "" when its dates are fine


def _tls_context(opts: DialOptions, verify_against: bytes | None = None) -> ssl.SSLContext:
    """No verification (``verify_against`` None), or against one certificate taken as its own anchor."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if verify_against is None:
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        ctx.load_verify_locations(cadata=verify_against)
    if opts.client_cert_file:
        ctx.load_cert_chain(opts.client_cert_file, opts.client_key_file)
    ctx.set_alpn_protocols(["h2"])
    return ctx


def _sni(address: ServerAddress, opts: DialOptions) -> str:
    return opts.server_name or address.host or "localhost"


async def _unverified_connection(address: ServerAddress, opts: DialOptions):
    """A TLS connection that verifies nothing (the TLS bridge checks the pin)."""
    ctx = _tls_context(opts)
    if address.unix_path:
        connecting = asyncio.open_unix_connection(address.unix_path, ssl=ctx, server_hostname=_sni(address, opts))
    else:
        connecting = asyncio.open_connection(address.host, address.port, ssl=ctx, server_hostname=_sni(address, opts))
    return await asyncio.wait_for(connecting, opts.timeout)


# OpenSSL's verify codes for a certificate whose dates exclude now
_OUT_OF_DATE = {9: "certificate is not yet valid", 10: "certificate has expired"}


def fetch_unverified_certificate(address: ServerAddress, opts: DialOptions, timeout: float) -> Presented:
    """--tls-allow-insecure: the certificate the server presents, a name it is valid for, and whether its
    dates are out of range.

    grpcio cannot skip certificate verification, so this fetches the server's own certificate without
    checking it, and the connection then trusts exactly that certificate. The traffic is encrypted, but
    who is at the other end is not verified: the same trade the hubble CLI's flag makes.
    """

    def handshake(context: ssl.SSLContext) -> ssl.SSLSocket:
        if address.unix_path:
            raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            raw.settimeout(timeout)
            raw.connect(address.unix_path)
        else:
            raw = socket.create_connection((address.host, address.port), timeout=timeout)
        return context.wrap_socket(raw, server_hostname=_sni(address, opts))

    try:
        with handshake(_tls_context(opts)) as sock:
            der = sock.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as exc:
        raise ConnectFailed(f"TLS handshake to read the server's certificate failed: {exc}") from None
    if not der:
        raise ConnectFailed("the server presented no certificate")
    out_of_date = ""
    try:
        # verified against itself, only to read its names back decoded and to learn whether its dates hold
        with handshake(_tls_context(opts, der)) as sock:
            info = sock.getpeercert() or {}
    except ssl.SSLCertVerificationError as exc:
        info = {}
        out_of_date = _OUT_OF_DATE.get(exc.verify_code, "")
    except (OSError, ssl.SSLError):
        info = {}
    # a name the certificate carries, so that the name check passes too: nothing about it is verified
    name = _certificate_name(info) or opts.server_name or address.host
    return Presented(der, name, out_of_date)


def _certificate_name(info: dict) -> str:
    dns = [value for kind, value in info.get("subjectAltName", ()) if kind == "DNS"]
    ips = [value.strip() for kind, value in info.get("subjectAltName", ()) if kind == "IP Address"]
    common = [value for rdn in info.get("subject", ()) for key, value in rdn if key == "commonName"]
    for name in (*dns, *ips, *common):
        # a wildcard stands for any one label; gRPC needs a concrete name it matches
        return "hubbletui." + name[2:] if name.startswith("*.") else name
    return ""


# ---------------------------------------------------------------------------------------------------------
# errors a person can act on


def explain_details(details: str, opts: DialOptions) -> str:
    """gRPC's connection error text -> the reason in words, with the flag that fixes it when there is one."""
    text = details
    lower = text.lower()
    name = opts.server_name or opts.address.host or opts.address.text
    if "hostname verification" in lower or "no match found for server name" in lower:
        return (f"TLS: the server's certificate is not valid for the name {name!r} "
                "(give the name it carries with --tls-server-name)")
    if "expired" in lower or "not yet valid" in lower:
        return "TLS: the server's certificate has expired or is not valid yet"
    if "certificate_verify_failed" in lower:
        hint = "--tls-ca-cert-files" if not opts.ca_files else "is --tls-ca-cert-files the CA that signed it?"
        return f"TLS: the server's certificate is not signed by a trusted CA ({hint})"
    if "certificate_required" in lower:
        return "TLS: the server requires a client certificate (--tls-client-cert-file, --tls-client-key-file)"
    if "unknown_ca" in lower or "bad_certificate" in lower:
        return "TLS: the server rejected the client certificate"
    if "wrong_version_number" in lower or "packet_length_too_long" in lower:
        return "TLS handshake failed: the server does not speak TLS (drop --tls / tls://?)"
    if "failed to create security handshaker" in lower:
        return "TLS: unusable certificate material"
    if "connection refused" in lower:
        return "connection refused"
    if "domain name not found" in lower or "hostname lookup error" in lower:
        return f"cannot resolve host {opts.address.host!r}"
    if "no such file or directory" in lower and opts.address.unix_path:
        return f"no socket at {opts.address.unix_path}"
    if "permission denied" in lower and opts.address.unix_path:
        return f"permission denied on {opts.address.unix_path}"
    if "socket closed" in lower or "connection reset" in lower:
        # TLS 1.3 lets a server refuse a client certificate after the client thinks the handshake is done
        if not opts.use_tls:
            return "the server closed the connection at once (a TLS server? try --tls)"
        if not opts.client_cert_file:
            return ("TLS: the server closed the connection in the handshake (does it require a client certificate? "
                    "--tls-client-cert-file, --tls-client-key-file)")
        return "TLS: the server closed the connection in the handshake (did it reject the client certificate?)"
    # gRPC prefixes the interesting part with "failed to connect to all addresses; last error: CODE: addr: "
    tail = text.rsplit("last error: ", 1)[-1]
    return printable(tail.strip() or "unknown error")


def unreachable(opts: DialOptions, reason: str) -> UnreachableError:
    return UnreachableError(f"cannot reach Hubble at {opts.address.text}: {reason}")
