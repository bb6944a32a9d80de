"""Benchmarks of pagedrop against baselines (not part of the product package).

``bench/quality.py`` compares the markdown of pagedrop and two baselines against ground truth;
the metrics live in :mod:`bench.quality_metrics` so tests can import them.
"""
