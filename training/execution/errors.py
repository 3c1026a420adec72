"""The known ways a run ends early, raised by the runner's parts and handled by the runner."""

from __future__ import annotations


class RunFailure(Exception):
    """A known way for a run to fail before or around the trainer (reason + message)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


class NotEnoughMemory(Exception):
    """The GPU has less free memory than planned: the run goes back to the queue."""
