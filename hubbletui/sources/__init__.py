"""Flow sources: where flows come from (a Hubble server over gRPC, a recording, a test fake), one interface."""
