"""Folders the tests read: the repository root, the fake trainers and recorded fixtures."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FAKE_TRAINERS = REPO / "tests" / "fake_trainers"
FIXTURES = REPO / "tests" / "fixtures"
