"""The benchmarks behind ``make bench`` (``python -m bench.report``); see report.py."""
