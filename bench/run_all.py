"""Run every benchmark on the default stack and on PostgreSQL + Redis; print one table.

Run: make bench   (or .venv/bin/python bench/run_all.py [--quick])

The PostgreSQL + Redis stack is started by scripts/with_postgres.sh and scripts/with_redis.sh
(Debian's servers on loopback, temporary folders), as `make test` does.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SERVERS = ["./scripts/with_postgres.sh", "./scripts/with_redis.sh"]
FIGURE = re.compile(r"^(?P<label>.+?):\s+p50 (?P<p50>[\d.]+) ms, p95 (?P<p95>[\d.]+) ms")


def benchmarks(quick: bool) -> list[tuple[str, str, list[str]]]:
    """(name, stack, argv) for every benchmark on every stack it depends on."""
    runs = ["--runs", "10", "--pairs", "3"] if quick else ["--runs", "20", "--pairs", "5"]
    lines = ["--lines", "100"] if quick else ["--lines", "200"]
    pages = ["--runs", "2000", "--queued", "200", "--repeat", "10"] if quick else []
    return [
        ("queue_latency", "default", [PY, "bench/queue_latency.py", *runs]),
        ("queue_latency", "postgres+redis", [*SERVERS, PY, "bench/queue_latency.py", *runs]),
        ("log_latency", "default", [PY, "bench/log_latency.py", *lines, "--flood", "20000"]),
        ("layer_latency", "postgres+redis", [*SERVERS, PY, "bench/layer_latency.py", *lines]),
        ("ingest", "any", [PY, "bench/ingest.py", "--rounds", "1" if quick else "3"]),
        ("pages", "default", [PY, "bench/pages.py", *pages]),
        ("pages", "postgres", [SERVERS[0], PY, "bench/pages.py", *pages]),
        ("estimate_accuracy", "default", [PY, "bench/estimate_accuracy.py"]),
        ("lost_run_detection", "default", [PY, "bench/lost_run_detection.py", "--kills", "3"]),
        ("lab_week", "simulated", [PY, "bench/lab_week.py", *(["--runs", "150"] if quick else [])]),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args()
    rows, notes, failed = [], [], []
    for name, stack, argv in benchmarks(args.quick):
        print(f"… {name} on {stack}", flush=True)
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            failed.append(f"{name} on {stack}: exit {proc.returncode}: {proc.stderr[-500:]}")
            continue
        for line in proc.stdout.splitlines():
            match = FIGURE.match(line.strip())
            if match:
                rows.append((name, stack, match["label"], match["p50"], match["p95"]))
            elif name == "lab_week" or "/s" in line or line.startswith("worker killed"):
                notes.append(f"{name} ({stack}): {line.strip()}")
    width = max([len(r[2]) for r in rows] + [10])
    print(f"\n{'stack':<15} {'measure':<{width}} {'p50 ms':>8} {'p95 ms':>8}")
    for _name, stack, label, p50, p95 in rows:
        print(f"{stack:<15} {label:<{width}} {p50:>8} {p95:>8}")
    for note in notes:
        print(note)
    for failure in failed:
        print(f"FAILED {failure}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
