"""Follow a run in the terminal: new log lines and a progress bar until it ends."""

from __future__ import annotations

import time

from training.models import RunLog, TrainingRun

BAR_WIDTH = 30


def progress_bar(step: int, total: int | None, width: int = BAR_WIDTH) -> str:
    """A text bar such as "[#######-------]  45/100" (no total: just the step)."""
    if not total:
        return f"step {step}"
    done = min(width, int(width * step / total))
    return f"[{'#' * done}{'-' * (width - done)}] {step:>{len(str(total))}}/{total}"


def status_line(run: TrainingRun) -> str:
    """One line: status, progress, loss and ETA."""
    parts = [f"Run #{run.pk} {run.get_status_display().lower()}"]
    if run.status == "running" or run.step:
        parts.append(progress_bar(run.step, run.total_steps))
    if run.loss is not None:
        parts.append(f"loss {run.loss:.4f}")
    if run.eta_seconds is not None and run.status == "running":
        parts.append(f"ETA {run.eta_seconds // 60}:{run.eta_seconds % 60:02d}")
    return "  ".join(parts)


def follow_run(run_id: int, *, write, poll: float = 0.5, timeout: float | None = None, logs=True):
    """Print new log lines and status changes of a run until it ends (or `timeout`); return it.

    `write` takes one line of text (a command's `self.stdout.write`).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    seq = 0
    last_status = ""
    while True:
        run = TrainingRun.objects.get(pk=run_id)
        if logs:
            for chunk_seq, text in (
                RunLog.objects.filter(run_id=run_id, seq__gt=seq)
                .order_by("seq")
                .values_list("seq", "text")
            ):
                seq = chunk_seq
                for line in text.rstrip("\n").split("\n"):
                    write("  | " + line)
        line = status_line(run)
        if line != last_status:
            write(line)
            last_status = line
        if run.is_terminal:
            if run.status_message:
                write(run.status_message)
            return run
        if deadline is not None and time.monotonic() > deadline:
            return run
        time.sleep(poll)
