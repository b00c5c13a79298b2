"""Our own observer.Observer server: it replays a recording so that any Hubble client can use it as a relay.

`ReplayServer` (replay.py) runs inside any asyncio program (the `serve` command, tests, the demo inside the TUI).
"""
