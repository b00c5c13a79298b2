"""Flow sources: where flows come from (a Hubble server over gRPC, a recording, a test fake), one interface."""

DEFAULT_SERVER = "localhost:4245"  # where the hubble CLI looks for a server (a port-forwarded relay)
