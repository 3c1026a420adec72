"""Fake trainer: fails to load its base model file (FileNotFoundError, exit 1).

Accepts any argv; the missing path is --pretrained_model_name_or_path when given, else
"/models/sd3.5_medium.safetensors". stderr: the traceback ending in
"FileNotFoundError: [Errno 2] No such file or directory: '<path>'". Writes no LoRA.
"""

import sys

from _common import arg, err, out

path = arg("pretrained_model_name_or_path", "/models/sd3.5_medium.safetensors")
out("Loading dataset config from /tmp/work/dataset.toml")
err(
    "Traceback (most recent call last):\n"
    '  File "/opt/sd-scripts/library/sd3_utils.py", line 71, in load_safetensors\n'
    "    with safe_open(path, framework='pt', device=device) as f:\n"
    f"FileNotFoundError: [Errno 2] No such file or directory: '{path}'\n"
)
sys.exit(1)
