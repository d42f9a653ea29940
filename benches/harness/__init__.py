"""The benchmark harness (see benches/README.md)."""
