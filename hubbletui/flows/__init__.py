"""Flows: the normalised Flow model, decoding (JSON lines, protobuf), recordings, filters and the store."""
