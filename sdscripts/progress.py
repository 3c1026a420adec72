"""Split a trainer's output stream and read sd-scripts' progress from it (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

PieceKind = Literal["line", "progress"]

_SEP = re.compile(r"(\r\n|\r|\n)")
# Terminal control: CSI sequences (tqdm's nested bars write ESC[A, cursor up), other ESC
# sequences, and C0 control characters but tab.
_TERMINAL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x1f\x7f]")


def strip_terminal(text: str) -> str:
    """`text` without terminal control sequences."""
    return _TERMINAL.sub("", text)


# Any tqdm bar: "[00:16<00:16,  4.18s/it, ...]" or "[00:16, 4.18it/s]" after a count or a bar.
_TIME = r"\d+:\d\d(?::\d\d)?"
_BRACKET = rf"\[{_TIME}(?:<(?:{_TIME}|\?))?,[^\]\n]*\]"
_ANY_BAR = re.compile(rf"(?:\d+%\|[^|\n]*\||\d+(?:/\d+)?(?:it)?)\s*{_BRACKET}")
_BAR_THEN_TEXT = re.compile(rf"^(.*?{_BRACKET})(.*)$", re.DOTALL)

_STEPS = re.compile(
    r"(?<![\w])steps:\s*\d+%\|[^|\n]*\|\s*(?P<step>\d+)/(?P<total>\d+)\s*"
    rf"\[(?P<elapsed>{_TIME})<(?P<remaining>{_TIME}|\?),\s*"
    r"(?P<rate>[\d.]+|\?)\s*(?P<unit>it/s|s/it)(?P<postfix>[^\]\n]*)\]"
)
_LOSS = re.compile(r"avr_loss=(?P<loss>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf))")
_EPOCH = re.compile(r"(?:^|\s)epoch (\d+)/(\d+)\s*$")
_SAVED = re.compile(r"saving checkpoint: (.+?)\s*$")
_TOTAL_STEPS = re.compile(r"total optimization steps[^:\n]*:\s*(\d+)")


@dataclass(frozen=True)
class Piece:
    """One piece of trainer output: a log line or a progress-bar update."""

    text: str
    kind: PieceKind


@dataclass(frozen=True)
class Progress:
    """One update of sd-scripts' "steps:" bar."""

    step: int
    total: int
    elapsed_s: int
    remaining_s: int | None
    rate: float | None  # iterations per second
    loss: float | None


def _pieces(fragment: str, kind: PieceKind) -> list[Piece]:
    """Classify one terminated fragment; split a bar that has a log line glued after it."""
    if "|" not in fragment and "[" not in fragment:
        if kind == "progress" and not fragment:
            return []
        return [Piece(fragment, kind)]
    match = _BAR_THEN_TEXT.match(fragment) if _ANY_BAR.search(fragment) else None
    if match is None:
        if kind == "progress" and not fragment:
            return []
        return [Piece(fragment, kind)]
    bar, rest = match.group(1), match.group(2).strip()
    if not rest:
        return [Piece(fragment.rstrip(), "progress")]
    return [Piece(bar, "progress"), Piece(rest, "line")]


class StreamSplitter:
    """Incrementally split text on "\\r" and "\\n" into log lines and progress updates.

    A fragment ended by "\\r" is progress, one ended by "\\n" (or "\\r\\n") is a line. A
    newline-ended fragment that is itself a tqdm bar (tqdm's final update) is progress too,
    and a log line glued to the end of a bar is split off as a line of its own.
    """

    def __init__(self) -> None:
        self._tail = ""

    @property
    def pending(self) -> str:
        """The unterminated text kept for the next feed (e.g. the bar being drawn now)."""
        return self._tail.rstrip("\r")

    def feed(self, text: str) -> list[Piece]:
        """Add text; return the pieces it completed."""
        if not text:
            return []
        parts = _SEP.split(self._tail + text)
        self._tail = parts[-1]
        end = len(parts) - 1
        # A final bare "\r" may be the first half of "\r\n": decide on the next feed.
        if end >= 2 and parts[-1] == "" and parts[-2] == "\r":
            self._tail = parts[-3] + "\r"
            end -= 2
        out: list[Piece] = []
        for i in range(0, end, 2):
            fragment = strip_terminal(parts[i])
            if fragment != parts[i] and not fragment.strip():
                continue  # it held nothing but control sequences
            kind: PieceKind = "progress" if parts[i + 1] == "\r" else "line"
            if kind == "line" and "|" not in fragment and "[" not in fragment:
                out.append(Piece(fragment, "line"))
            else:
                out.extend(_pieces(fragment, kind))
        return out

    def flush(self) -> list[Piece]:
        """Return what is left at end of stream."""
        tail, self._tail = (
            strip_terminal(self._tail.rstrip("\r")) + ("\r" if self._tail.endswith("\r") else ""),
            "",
        )
        if tail.endswith("\r"):
            return _pieces(tail[:-1], "progress")
        if not tail:
            return []
        return _pieces(tail, "line")


def _seconds(text: str) -> int:
    """Convert tqdm's "MM:SS" or "H:MM:SS" to seconds."""
    total = 0
    for part in text.split(":"):
        total = total * 60 + int(part)
    return total


def parse_progress(text: str) -> Progress | None:
    """Read sd-scripts' "steps:" tqdm bar; None for anything else (other bars included)."""
    if "steps:" not in text:
        return None
    match = _STEPS.search(text)
    if match is None:
        return None
    remaining = match["remaining"]
    rate: float | None = None
    if match["rate"] != "?":
        value = float(match["rate"])
        if match["unit"] == "it/s":
            rate = value
        else:
            rate = 1.0 / value if value > 0 else None
    loss_match = _LOSS.search(match["postfix"])
    return Progress(
        step=int(match["step"]),
        total=int(match["total"]),
        elapsed_s=_seconds(match["elapsed"]),
        remaining_s=None if remaining == "?" else _seconds(remaining),
        rate=rate,
        loss=float(loss_match["loss"]) if loss_match else None,
    )


def parse_epoch(text: str) -> tuple[int, int] | None:
    """Read "epoch 3/10" as (3, 10)."""
    match = _EPOCH.search(text)
    return (int(match[1]), int(match[2])) if match else None


def parse_saved_path(text: str) -> str | None:
    """Read the path from "saving checkpoint: PATH"."""
    match = _SAVED.search(text)
    return match[1] if match else None


def parse_total_steps(text: str) -> int | None:
    """Read N from the start summary's "total optimization steps / 学習ステップ数: N"."""
    match = _TOTAL_STEPS.search(text)
    return int(match[1]) if match else None


def is_progress_noise(text: str) -> bool:
    """True for any tqdm-looking bar (steps, caching, sampling), which never goes in the log."""
    return _ANY_BAR.search(text) is not None


MAX_LOSS_POINTS = 500


@dataclass
class ProgressState:
    """A run's progress, folded from the trainer's output one piece at a time.

    The fields are the run's own progress columns. `loss_points` keeps one [step, loss] per
    step: sd-scripts redraws a step's bar more than once (first with the previous step's
    loss, then with its own), so the last value drawn for a step wins. Past
    MAX_LOSS_POINTS every other point is dropped, the newest always kept.
    """

    step: int = 0
    total_steps: int | None = None
    epoch: int = 0
    total_epochs: int | None = None
    loss: float | None = None
    speed: float | None = None
    eta_seconds: int | None = None
    loss_points: list[list] = field(default_factory=list)
    # Steps done before a resume: after `--resume` sd-scripts' bar counts from 0 again, out
    # of all the run's steps (its start summary's total), so the run's step is offset + n.
    step_offset: int = 0

    def fold_bar(self, bar: Progress) -> None:
        """Take one update of the "steps:" bar."""
        if self.step_offset:
            total = self.total_steps or bar.total
            bar = replace(bar, step=min(bar.step + self.step_offset, total), total=total)
        self.step, self.total_steps = bar.step, bar.total
        self.speed = bar.rate
        self.eta_seconds = bar.remaining_s
        if bar.loss is None or bar.step <= 0:
            return
        self.loss = bar.loss
        points = self.loss_points
        if points and points[-1][0] == bar.step:
            points[-1] = [bar.step, bar.loss]
            return
        points.append([bar.step, bar.loss])
        if len(points) > MAX_LOSS_POINTS:
            last = points[-1]
            self.loss_points = points = points[::2]
            if points[-1] != last:
                points.append(last)

    def fold_line(self, line: str) -> bool:
        """Take one log line; True when it changed the progress (epoch or total steps)."""
        changed = False
        epoch = parse_epoch(line)
        if epoch is not None:
            self.epoch, self.total_epochs = epoch
            changed = True
        total = parse_total_steps(line)
        if total is not None:
            self.total_steps = total
            changed = True
        return changed

    def fields(self) -> dict:
        """The progress columns and their values."""
        return {
            "step": self.step,
            "total_steps": self.total_steps,
            "epoch": self.epoch,
            "total_epochs": self.total_epochs,
            "loss": self.loss,
            "speed": self.speed,
            "eta_seconds": self.eta_seconds,
            "loss_points": self.loss_points,
        }
