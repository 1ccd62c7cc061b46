"""Benchmarks: performance targets are measured here, not in the test suite."""
