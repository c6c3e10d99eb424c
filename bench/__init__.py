"""Benchmark of the token server: `python -m bench --help`, docs/benchmarks.md."""
