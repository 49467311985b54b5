"""Benchmarks: scripts that print numbers, run against the test fakes; not part of pytest."""
