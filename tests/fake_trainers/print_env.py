"""Fake trainer that prints its environment, one "ENV NAME=VALUE" line each, and fails.

Accepts any argv. Tests read the run's log to see what a trainer inherits from its worker.
"""

import os
import sys

from _common import out

for name in sorted(os.environ):
    out(f"ENV {name}={os.environ[name]}")
sys.exit(1)
