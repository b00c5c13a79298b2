"""A request's backlog filtered off the event loop, in a thread of its own.

The backlog is up to a whole recording, and one client's filter can make each flow cost milliseconds (RE2 is
linear in the text, but a thousand patterns over a long URL is still a long line): on the loop, every other
client and the server's signal handling would wait for it. RE2 releases the GIL while it matches, and Python
code between matches yields it every switch interval, so the loop keeps serving meanwhile. The thread is a
daemon that stops at the next flow once its request is gone: a stopping server never waits for it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable


async def filtered(wants: Callable[[int], bool], indices: Iterable[int]) -> list[int]:
    """The indices ``wants`` keeps, in order."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    gone = threading.Event()

    def settle(result, exc) -> None:
        if not done.done():
            done.set_exception(exc) if exc is not None else done.set_result(result)

    def run() -> None:
        kept, exc = [], None
        try:
            for i in indices:
                if gone.is_set():
                    return
                if wants(i):
                    kept.append(i)
        except Exception as error:  # reported through the request's handler, as on the loop
            exc = error
        try:
            loop.call_soon_threadsafe(settle, kept, exc)
        except RuntimeError:
            pass  # the loop closed meanwhile: nobody waits for the answer

    threading.Thread(target=run, name="hubbletui-filter", daemon=True).start()
    try:
        return await done
    finally:
        gone.set()
