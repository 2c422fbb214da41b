"""Benchmarks (scripts, not timed tests): ratios measured in one run."""
