"""Benchmarks: figures and ratios, not tests (`make bench`)."""
