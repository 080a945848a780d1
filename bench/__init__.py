"""Benchmarks (run each with `python -m bench.<name>`)."""
