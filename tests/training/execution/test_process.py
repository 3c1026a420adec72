"""The trainer process: its group, its output and stopping it (real processes)."""

import os
import sys
import time

import pytest

from training.execution import process

pytestmark = pytest.mark.slow

SLEEPER = "[sys.executable, '-c', 'import time; time.sleep(60)']"


def start(folder, code: str) -> process.TrainerProcess:
    return process.TrainerProcess([sys.executable, "-c", code], cwd=str(folder), command_env={})


def test_group_pids_lists_the_processes_of_a_group():
    assert os.getpid() in process.group_pids(os.getpgid(0))
    assert process.group_pids(2**22 + 12345) == frozenset()


def test_output_arrives_in_order_per_stream_and_both_streams_end(tmp_path):
    trainer = start(
        tmp_path,
        "import sys, time\n"
        "for i in range(3):\n"
        "    print(f'line {i}', flush=True)\n"
        "    sys.stderr.write(f'\\rsteps: {i}'); sys.stderr.flush(); time.sleep(0.05)\n",
    )
    received = {"stdout": "", "stderr": ""}
    while not trainer.finished():
        for name, text in trainer.output(timeout=0.1):
            if text is None:
                trainer.done(name)
            else:
                received[name] += text
    assert trainer.wait() == 0
    assert received["stdout"] == "line 0\nline 1\nline 2\n"
    assert received["stderr"] == "\rsteps: 0\rsteps: 1\rsteps: 2"
    assert not trainer.pids


def test_stop_ends_the_whole_group_including_children(tmp_path):
    trainer = start(
        tmp_path, f"import subprocess, sys, time; subprocess.Popen({SLEEPER}); time.sleep(60)"
    )
    deadline = time.monotonic() + 30
    while len(trainer.pids) < 2:
        assert time.monotonic() < deadline, "the child process never started"
        time.sleep(0.02)
    trainer.stop(grace=1.0)
    assert not process.group_pids(trainer.pgid)
    assert trainer.returncode is not None and trainer.returncode < 0
