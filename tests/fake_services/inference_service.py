"""A stand-in for a lab's inference-server unit (`systemctl start|stop comfyui`): it starts the
fake ComfyUI (tests/fake_inference.py) as a process of its own and stops it.

usage: inference_service.py start|stop STATE_DIR PORT MODELS LORAS

`start` returns at once, before the server answers (as systemctl does); `stop` waits until it
is gone, and succeeds when nothing runs. Each call is appended to STATE_DIR/calls.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

FAKE = Path(__file__).resolve().parent.parent / "fake_inference.py"


def main() -> int:
    action, state, port, models, loras = sys.argv[1:6]
    state_dir = Path(state)
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / "calls", "a") as calls:
        calls.write(action + "\n")
    pid_file = state_dir / "pid"
    if action == "start":
        log = open(state_dir / "log", "ab")  # noqa: SIM115 - the server keeps it
        proc = subprocess.Popen(
            [sys.executable, str(FAKE), port, models, loras],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(FAKE.parent.parent)},
        )
        pid_file.write_text(str(proc.pid))
        return 0
    if action == "stop" and pid_file.exists():
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.05)
        except ProcessLookupError:
            pass
        pid_file.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
