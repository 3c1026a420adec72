"""The demo trainer's console output, shaped like sd-scripts' (--console_log_simple).

Log lines go to stdout; the tqdm-style "steps:" bar goes to stderr as "\\r" updates.
"""

from __future__ import annotations

import sys
import time


def format_clock(seconds: float) -> str:
    """Format seconds like tqdm: MM:SS, or H:MM:SS past an hour."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def format_number(value: float) -> str:
    """Format a postfix number the way tqdm's set_postfix does."""
    short = f"{value:.3g}".replace("+0", "+").replace("-0", "-")
    return short if len(short) < len(str(value)) else str(value)


def format_bar(desc: str, n: int, total: int, elapsed: float, postfix: str = "") -> str:
    """Format one tqdm-style bar: 'steps:  50%|█████     | 4/8 [00:16<00:16,  4.18s/it, …]'."""
    fraction = n / total if total else 1.0
    width = 10
    filled, partial = divmod(int(fraction * width * 8), 8)
    body = "█" * filled
    if filled < width:
        body += (" ▏▎▍▌▋▊▉"[partial]) + " " * (width - filled - 1)
    if n == 0 or elapsed <= 0:
        timing = f"{format_clock(elapsed)}<?, ?it/s"
    else:
        rate = n / elapsed
        remaining = (total - n) / rate
        speed = f"{rate:5.2f}it/s" if rate >= 1 else f"{1 / rate:5.2f}s/it"
        timing = f"{format_clock(elapsed)}<{format_clock(remaining)}, {speed}"
    extra = f", {postfix}" if postfix else ""
    return f"{desc}: {int(fraction * 100):3d}%|{body}| {n}/{total} [{timing}{extra}]"


class Bar:
    """A small tqdm stand-in writing "\\r"-updates to stderr.

    sd-scripts' steps take seconds, so tqdm draws every one, and twice: when the step
    count moves (still showing the previous step's loss) and again when the new loss is set.
    The demo draws the same way, so the runner meets the real pattern.
    """

    def __init__(self, total: int, desc: str = "steps") -> None:
        self.total = total
        self.desc = desc
        self.start = time.monotonic()
        self.postfix = ""

    def show(self, n: int) -> None:
        """Draw the bar at step n with the current postfix."""
        now = time.monotonic()
        line = format_bar(self.desc, n, self.total, now - self.start, self.postfix)
        sys.stderr.write("\r" + line)
        sys.stderr.flush()

    def close(self) -> None:
        """End the bar with a newline, as tqdm does."""
        sys.stderr.write("\n")
        sys.stderr.flush()


def say(text: str = "") -> None:
    """Print a line to stdout and flush."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class LossRecorder:
    """sd-scripts' moving average: the mean loss over the last epoch's worth of steps."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.total = 0.0

    def add(self, epoch: int, step: int, loss: float) -> None:
        """Record the loss of step (0-based within its epoch)."""
        if epoch == 0 or step >= len(self.losses):
            self.losses.append(loss)
        else:
            self.total -= self.losses[step]
            self.losses[step] = loss
        self.total += loss

    @property
    def average(self) -> float:
        """Mean of the recorded window."""
        return self.total / len(self.losses) if self.losses else 0.0
