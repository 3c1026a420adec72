"""How close a new demo run's estimated duration comes to its real one, on a lab with history.

Run: .venv/bin/python bench/estimate_accuracy.py

It runs tests/training/test_estimate_accuracy.py (three real demo runs as history, then a
fourth estimated and run, all through the new-run page and the runner) and prints the line
that test prints: the estimate, the real duration and the error (goal: within 25 %).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    test = "tests/training/test_estimate_accuracy.py"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", test],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    figures = [line for line in done.stdout.splitlines() if "estimated at" in line]
    print("\n".join(figures) or done.stdout[-2000:])
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
