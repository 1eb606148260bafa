"""Canopy's benchmark suite: `make bench` (python -m bench.run) writes docs/benchmarks.md."""
