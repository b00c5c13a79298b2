"""hubbletui: why did Cilium (or Istio) say no, and what is the smallest safe fix."""

import os

# gRPC's C core logs connection and handshake failures straight to stderr; hubbletui reports them itself, as
# one line. The variable only takes effect when set before grpc is first imported, hence here.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

__version__ = "0.1.0"
