"""A line of check_node's report (its own module: the checks in check.py, engine.py and
probe.py all make them)."""

from __future__ import annotations

from dataclasses import dataclass

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Check:
    """One line of the report; `fix` says what to do when it is not ok, `log` is the output
    that shows why (the trainer's last lines after a failed probe)."""

    name: str
    state: str
    detail: str
    fix: str = ""
    log: str = ""
