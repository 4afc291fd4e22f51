"""Stand-in for cuda-python's `cuda` namespace (see tests/stubs/README.md)."""
