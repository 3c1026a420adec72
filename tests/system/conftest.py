"""Fixtures of the system tests: the real stack the browser tests drive."""

from tests.system.browser_stack import stack, stack_database, stack_env, stack_setup  # noqa: F401
