"""Benchmark evaluation: loading items, reading answers from replies, and scoring.

Only the pure, model-free parts are imported here, so `import ultramedical.eval` stays light.
"""

from ultramedical.eval.benchmarks import BenchmarkItem, load_benchmark
from ultramedical.eval.extract import extract_answer, extract_yes_no_maybe
from ultramedical.eval.stats import accuracy_ci95

__all__ = ["BenchmarkItem", "accuracy_ci95", "extract_answer", "extract_yes_no_maybe", "load_benchmark"]
