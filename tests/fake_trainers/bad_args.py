"""Fake trainer: rejects its arguments like sd-scripts' argparse (exit 2).

Accepts any argv. stderr: the usage line and
"train_network.py: error: unrecognized arguments: --bogus_flag". Prints nothing to stdout,
writes nothing.
"""

import sys

from _common import err

err("usage: train_network.py [-h] [--console_log_level {DEBUG,INFO,WARNING,ERROR,CRITICAL}]\n")
err("                        [--dataset_config DATASET_CONFIG] [--output_dir OUTPUT_DIR]\n")
err("train_network.py: error: unrecognized arguments: --bogus_flag\n")
sys.exit(2)
