"""bench/lab_week.py at a tiny scale, through its own command line: the three policies and
sane figures (the figures themselves are the benchmark's business, not the tests')."""

import json
import subprocess
import sys

import pytest

from tests.paths import REPO

pytestmark = pytest.mark.slow  # starts the benchmark as a process


def test_lab_week_prints_a_row_per_policy_and_draws_the_plot(tmp_path):
    plot = tmp_path / "week.png"
    done = subprocess.run(
        [sys.executable, "bench/lab_week.py", "--runs", "8", "--seed", "3", "--json"]
        + ["--plot", str(plot)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout)
    assert [r["policy"] for r in rows] == ["fifo", "count", "lorastudio"]
    for row in rows:
        assert 0 <= row["busy_pct"] <= 100
        assert 0 <= row["wait_p50_h"] <= row["wait_p95_h"]
        assert isinstance(row["oom_runs"], int) and 0 <= row["oom_runs"] <= 8
        assert 0 < row["jain"] <= 1
        assert row["makespan_h"] > 0
    assert plot.read_bytes().startswith(b"\x89PNG")
