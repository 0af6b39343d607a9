"""Benchmarks (run as modules: `python -m benchmarks.gpu`); measured, never asserted."""
