"""Offline reply-quality evaluations: data sets, metrics per pipeline stage, reports and a regression gate.

Entry points: `replydesk eval SUITE` (see `engine/cli_eval.py`), `python -m evals.prepare` (derived data sets)
and `python -m evals.bench` (throughput and latency table).
"""
