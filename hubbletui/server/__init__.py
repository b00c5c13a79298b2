"""Our own observer.Observer server: it replays a recording so that any Hubble client can use it as a relay.

`ReplayServer` (replay.py) runs inside any asyncio program (the `serve` command, tests, the demo inside the TUI).
"""

import os

# gRPC's C core logs handshake failures to stderr on its own; the server reports what matters itself. Only
# effective when set before grpc is first imported.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")
