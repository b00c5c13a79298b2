"""The server's one clock: which events of the playlist have "happened" by now.

A replay server behaves like a live Hubble: the recording plays on a single timeline that starts when the
server starts, at ``speed`` times the recorded pace (or all at once, unpaced). What has played is the
server's buffer (what non-follow requests and `--last` see); follow streams receive each event when it plays.
Event indices count across loop passes: index i is event i % n of pass i // n.
"""

from __future__ import annotations

from bisect import bisect_right

from hubbletui.flows.replay_time import LoopClock
from hubbletui.server.playlist import Playlist


class Playback:
    """``clock`` (`now()`, `async sleep(seconds)`; the event loop's by default) is what follow streams wait on:
    the same kind of clock the recording pacer takes, so a test can step it."""

    def __init__(self, playlist: Playlist, speed: float | None, loop: bool, clock=None):
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive (None: unpaced)")
        if loop and speed is None:
            raise ValueError("an unpaced recording cannot loop: it would play forever at once")
        self.playlist = playlist
        self.speed = speed
        self.n = len(playlist)
        self.loop = loop and self.n > 0
        self.clock = clock or LoopClock()
        self.period_ns = playlist.period_ns
        self.started = self.clock.now()

    def played(self, at: float | None = None) -> int:
        """How many events have played by monotonic time ``at`` (default now)."""
        at = self.clock.now() if at is None else at
        if at < self.started:
            return 0
        if self.speed is None:
            return self.n
        elapsed = (at - self.started) * 1e9 * self.speed
        if not self.loop:
            return bisect_right(self.playlist.offsets, elapsed)
        passes, into = divmod(int(elapsed), self.period_ns)
        return passes * self.n + bisect_right(self.playlist.offsets, into)

    def plays_at(self, i: int) -> float:
        """The monotonic time at which event ``i`` plays."""
        if self.speed is None:
            return self.started
        passes, j = divmod(i, self.n)
        return self.started + (passes * self.period_ns + self.playlist.offsets[j]) / 1e9 / self.speed

    def buffer_start(self, played: int) -> int:
        """The oldest event still in the buffer: like Hubble's ring, it holds one recording's worth."""
        return max(0, played - self.n)

    def uptime_ns(self) -> int:
        return int((self.clock.now() - self.started) * 1e9)
