"""Fixtures of the system tests: the real stack the browser test drives."""

from tests.system.browser_stack import stack, stack_database  # noqa: F401  (fixtures)
