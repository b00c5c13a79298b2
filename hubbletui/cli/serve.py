"""`hubbletui serve`: a recording served over gRPC as a Hubble Observer, for demos, post-mortems and tests."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import click

from hubbletui.server.playlist import Playlist
from hubbletui.server.replay import ReplayServer, ServerTls


def _say(message: str) -> None:
    print(f"hubbletui: {message}", file=sys.stderr, flush=True)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("recording", metavar="RECORDING", required=False)
@click.option("--input", "input_dir", metavar="DIR", help="serve the flows of an incident bundle instead of RECORDING")
@click.option("--listen", default="127.0.0.1:4245", show_default=True, metavar="HOST:PORT",
              help="address to serve on (port 0: any free port; unix:///path for a socket)")
@click.option("--speed", type=float, default=1.0, show_default=True,
              help="play the recorded time gaps this many times faster")
@click.option("--no-pacing", is_flag=True, help="everything has happened at start: serve it all at once")
@click.option("--loop", is_flag=True, help="play the recording again when it ends, times moved forward")
@click.option("--tls-cert-file", type=click.Path(dir_okay=False), help="serve TLS with this certificate (PEM)")
@click.option("--tls-key-file", type=click.Path(dir_okay=False), help="the certificate's private key (PEM)")
@click.option("--tls-client-ca-files", multiple=True, type=click.Path(dir_okay=False),
              help="require client certificates signed by these CAs (mTLS; repeatable)")
def serve(recording, input_dir, listen, speed, no_pacing, loop, tls_cert_file, tls_key_file, tls_client_ca_files):
    """Serve RECORDING (jsonpb lines, .gz ok) as a Hubble Relay would: any Hubble client can connect.

    \b
    GetFlows honours filters, since/until, first/last, follow and field masks; flows play at their
    recorded pace times --speed. ServerStatus and GetNodes report what has played so far, node states
    as the recording's node_status events set them; the gRPC health check answers SERVING.
      hubbletui serve incident.json --speed 10 --loop
      hubble observe --server localhost:4245 --verdict DROPPED -f
    """
    if bool(recording) == bool(input_dir):
        raise click.UsageError("give one recording: RECORDING or --input DIR (a bundle)")
    if input_dir:
        from hubbletui.cluster.bundle import FLOWS

        recording = str(Path(input_dir) / FLOWS)
    if speed <= 0:
        raise click.BadParameter("must be positive", param_hint="--speed")
    _check_listen(listen)
    if no_pacing and loop:
        raise click.BadParameter("--loop needs pacing: unpaced, a loop would never end", param_hint="--loop")
    if bool(tls_cert_file) != bool(tls_key_file):
        raise click.BadParameter("--tls-cert-file and --tls-key-file go together")
    if tls_client_ca_files and not tls_cert_file:
        raise click.BadParameter("--tls-client-ca-files needs --tls-cert-file and --tls-key-file (mTLS is TLS)")
    tls = ServerTls(tls_cert_file, tls_key_file, tuple(tls_client_ca_files)) if tls_cert_file else None
    playlist = Playlist.load(recording, _say)
    server = ReplayServer(playlist, listen=listen, speed=None if no_pacing else speed, loop=loop, tls=tls,
                          report=_say)
    asyncio.run(_serve(server))


def _check_listen(listen: str) -> None:
    """gRPC quietly picks another port for one it cannot parse: refuse a malformed address up front."""
    if listen.startswith("unix:"):
        return
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(f"{listen!r} is not HOST:PORT with a port from 0 to 65535", param_hint="--listen")


async def _serve(server: ReplayServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    playlist = server.playlist
    pace = "all at once" if server.speed is None else f"at {server.speed:g}x"
    nodes = len(playlist.node_flows)
    _say(f"serving {playlist.flow_count} flows ({nodes} node{'s' if nodes != 1 else ''}) from {playlist.name} "
         f"on {'tls://' if server.tls else ''}{server.listening} {pace}{', looping' if server.loop else ''}; "
         "Ctrl-C stops")
    try:
        await stop.wait()
    finally:
        await server.stop(0.5)
        # let the cancelled streams end now: cancelled by asyncio.run's cleanup, grpc prints a traceback each
        rpcs = asyncio.all_tasks() - {asyncio.current_task()}
        if rpcs:
            await asyncio.wait(rpcs, timeout=0.5)
    _say("stopped")

