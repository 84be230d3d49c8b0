"""Reads a ctrain run's metrics.jsonl (bench/plot_runs.py, bench/run_summary.py)."""
import json
import os
import sys


def read_metrics(path):
    """The lines of RUN_DIR/metrics.jsonl (or of the file PATH) as dicts, in order; a line that is
    not JSON stops the script with its place."""
    if os.path.isdir(path):
        path = os.path.join(path, "metrics.jsonl")
    lines = []
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                try:
                    lines.append(json.loads(line))
                except json.JSONDecodeError as e:
                    sys.exit(f"{path}:{number}: not JSON ({e})")
    except OSError as e:
        sys.exit(f"{path}: {e.strerror}")
    return path, lines
