"""Stand-in for cuda-python's `cuda.bindings` (see tests/stubs/README.md)."""
