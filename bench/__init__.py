"""The benchmark harness: the pipeline's throughput, latency and memory, each beside its raw limit.

Run it with ``make bench`` (or ``.venv/bin/python -m bench --help``); see ``bench/README.md``.
"""
