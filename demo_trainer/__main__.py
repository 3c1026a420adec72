"""`python -m demo_trainer`: the built-in CPU demo trainer (see demo_trainer.cli)."""

import sys

from demo_trainer.cli import main

sys.exit(main())
