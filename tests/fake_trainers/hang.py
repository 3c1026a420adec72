"""Fake trainer that never ends: prints a "steps:" bar every second until killed.

Accepts any argv. At start it spawns a child process (a Python that sleeps for an hour)
in the trainer's own process group, like a DataLoader worker, and prints
"fake trainer pid P child pid C" to stdout; when FAKE_TRAINER_PID_FILE is set it also
writes "P C" there. A cancel test can then check that signalling the process group kills
both. Installs no signal handlers.
"""

import os
import subprocess
import sys

from _common import bar, err, out, pause, start_summary

child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
out(f"fake trainer pid {os.getpid()} child pid {child.pid}")
pid_file = os.environ.get("FAKE_TRAINER_PID_FILE")
if pid_file:
    with open(pid_file, "w") as fh:
        fh.write(f"{os.getpid()} {child.pid}\n")
total = start_summary(images=1000, epochs=1)
out("")
out("epoch 1/1")
step = 0
while True:
    err(bar(step, total, None if step == 0 else 0.5))
    step = min(step + 1, total - 1)
    pause(1.0)
