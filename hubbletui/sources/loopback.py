"""The demo's live path: our own replay server serves a recording on a loopback port, and the ordinary gRPC
source reads it back, reconnects and all. Both run in the loop of the thread that iterates this source."""

from __future__ import annotations

from collections.abc import AsyncIterator

from hubbletui.flows.model import Event
from hubbletui.flows.request import FlowQuery
from hubbletui.server.playlist import Playlist
from hubbletui.server.replay import ReplayServer
from hubbletui.sources.base import CONNECTING, SourceState, SourceStats
from hubbletui.sources.dial import DialOptions
from hubbletui.sources.grpc_client import GrpcSource

HISTORY = 100_000  # a follow request also asks for what was played before the client connected


class LoopbackReplaySource:
    def __init__(self, playlist: Playlist, *, speed: float | None, loop: bool = False, name: str = "replay"):
        self.playlist = playlist
        self.speed = speed
        self.loop = loop
        self.name = name
        self.stats = SourceStats()  # the gRPC client's, once it exists
        self.address = ""

    def describe(self) -> str:
        pace = "unpaced" if self.speed is None else f"{self.speed:g}x"
        where = f" {self.address}" if self.address else ""
        return f"{self.name}: gRPC replay{where} ({pace}{', looping' if self.loop else ''})"

    async def events(self) -> AsyncIterator[Event | SourceState]:
        yield SourceState(CONNECTING, "starting the replay server")
        server = ReplayServer(self.playlist, listen="127.0.0.1:0", speed=self.speed, loop=self.loop,
                              name=f"hubbletui-{self.name}")
        self.address = await server.start()
        try:
            client = GrpcSource(DialOptions(server=self.address), FlowQuery(follow=True, number=HISTORY))
            self.stats = client.stats
            async for event in client.events():
                yield event
        finally:
            await server.stop(None)
