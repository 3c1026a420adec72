"""A run's trainer log: lines batched into RunLog chunks (seq 1, 2, 3 … without gaps).

Every web process replays a run's log from these rows; each chunk is also sent live with
its seq, so a page that reconnects asks for what it missed and never shows a line twice.
"""

from __future__ import annotations

import time
from collections import deque

from training import live
from training.models import RunLog

FLUSH_S = 0.5
MAX_LOG_BYTES = 20 * 1024 * 1024
TAIL_LINES = 300


class RunLogWriter:
    """Collects a run's log lines and writes them as chunks; keeps the last lines at hand."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        last = RunLog.objects.filter(run_id=run_id).order_by("-seq").values_list("seq", flat=True)
        self.seq = last.first() or 0
        self.lines: list[str] = []
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)  # for classifying the exit
        self.written = 0
        self.dropped = 0
        self.last_flush = time.monotonic()

    def add(self, line: str) -> None:
        """Queue one line (past the size limit it is counted, not kept)."""
        self.tail.append(line)
        if self.written >= MAX_LOG_BYTES:
            self.dropped += 1
            return
        self.lines.append(line)
        self.written += len(line) + 1

    def tail_text(self) -> str:
        """The last lines, for reading why the trainer ended."""
        return "\n".join(self.tail)

    def due(self) -> bool:
        """Whether lines have waited long enough to be written."""
        return bool(self.lines) and time.monotonic() - self.last_flush >= FLUSH_S

    def flush(self) -> None:
        """Write the queued lines as one chunk and send it live."""
        self.last_flush = time.monotonic()
        if self.dropped and self.written >= MAX_LOG_BYTES:
            self.lines.append(f"[LoRA Studio: log limit reached; {self.dropped} lines not kept]")
            self.dropped = 0
            self.written += 1  # note it once
        if not self.lines:
            return
        text = "\n".join(self.lines) + "\n"
        self.lines = []
        self.seq += 1
        RunLog.objects.create(run_id=self.run_id, seq=self.seq, text=text)
        live.send_log(self.run_id, self.seq, text)
