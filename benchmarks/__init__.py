"""Benchmarks: `python -m benchmarks.throughput` (speed against plain PyTorch) and quality runs."""
