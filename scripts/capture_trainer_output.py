"""Capture a trainer's raw console output, byte for byte and in arrival order, as JSON lines.

Usage:
    python scripts/capture_trainer_output.py --out FILE.jsonl [--cwd DIR] [--env K=V ...]
        [--term-after SECONDS] -- argv...

The child runs with stdin from /dev/null in its own session; stdout and stderr are two
separate pipes drained with os.read as data arrives, so neither can fill. FILE.jsonl has one
object per chunk read, in the order read:
    {"t": 1.234, "fd": "stdout" | "stderr", "b64": "<base64 of the raw bytes>"}
then one closing line:
    {"t": 9.876, "exit": <returncode>}     (negative: killed by that signal, as Popen reports)
"t" is seconds since the child started (3 decimals). Bytes are kept exactly (\\r, ESC, partial
UTF-8 sequences split across chunks). --term-after sends SIGTERM to the child's process group
after that many seconds. The tool exits 0 once the file is written (the child's code is in it).
read_capture() loads a file back for tests.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import selectors
import signal
import subprocess
import sys
import time


def read_capture(path: str | os.PathLike[str]) -> tuple[list[tuple[float, str, bytes]], int | None]:
    """Return ([(t, "stdout"|"stderr", raw bytes), ...], exit code or None if absent)."""
    chunks: list[tuple[float, str, bytes]] = []
    exit_code: int | None = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            if "exit" in rec:
                exit_code = rec["exit"]
            else:
                chunks.append((float(rec["t"]), rec["fd"], base64.b64decode(rec["b64"])))
    return chunks, exit_code


def capture(
    argv: list[str], out: str, cwd: str | None, env: dict[str, str], term_after: float | None
) -> int:
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
    sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
    termed = False
    with open(out, "w", encoding="utf-8") as f:
        while sel.get_map():
            timeout = None
            if term_after is not None and not termed:
                timeout = max(0.0, term_after - (time.monotonic() - start))
                if timeout == 0.0:
                    try:
                        os.killpg(proc.pid, signal.SIGTERM)
                    except ProcessLookupError:  # already gone; EOFs still to be read
                        pass
                    termed = True
                    continue
            for key, _ in sel.select(timeout):
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                t = round(time.monotonic() - start, 3)
                b64 = base64.b64encode(data).decode("ascii")
                f.write(json.dumps({"t": t, "fd": key.data, "b64": b64}) + "\n")
                f.flush()
        rc = proc.wait()
        f.write(json.dumps({"t": round(time.monotonic() - start, 3), "exit": rc}) + "\n")
    return rc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--cwd")
    ap.add_argument("--env", action="append", default=[], metavar="K=V")
    ap.add_argument("--term-after", type=float, metavar="SECONDS")
    ap.add_argument("argv", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        ap.error("no command given after --")
    env = dict(kv.split("=", 1) for kv in args.env)
    rc = capture(argv, args.out, args.cwd, env, args.term_after)
    print(f"exit {rc} -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
