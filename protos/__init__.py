"""Generated protobuf contracts (package silobridge.v1); regenerate with scripts/gen_protos.py."""
