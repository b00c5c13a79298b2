"""Generated protobuf and gRPC modules for Hubble's API; regenerate with scripts/generate_protos.py."""
