"""Benchmarks of the bundled backends and the parity suite: `python -m bench.run` (docs/benchmarks.md)."""
