"""Fake trainer: trains one step the way check_node --probe asks, and says what it was given.

Reads --dataset_config (sd-scripts' TOML) and exits 1 with a FileNotFoundError when a
subset's image_dir holds no PNG, as a broken export would fail. Otherwise prints sd-scripts'
start summary, one step and "saving checkpoint: <output_dir>/<output_name>.safetensors",
writes that LoRA and prints "model saved.". When FAKE_TRAINER_RECORD is set (the node's
trainer env reaches the trainer), it writes there as JSON: sys.argv, CUDA_VISIBLE_DEVICES,
HF_HOME and the images and captions it found.
"""

import json
import os
import sys
import tomllib

from _common import arg, bar, err, final_lora_path, out, start_summary, write_lora

with open(arg("dataset_config"), "rb") as fh:
    config = tomllib.load(fh)
images = {}
for subset in config["datasets"][0]["subsets"]:
    folder = subset["image_dir"]
    for name in sorted(os.listdir(folder)):
        if name.endswith(".png"):
            caption = os.path.join(folder, name[:-4] + ".txt")
            images[name] = open(caption).read().strip() if os.path.exists(caption) else ""
record = os.environ.get("FAKE_TRAINER_RECORD")
if record:
    with open(record, "w") as fh:
        json.dump(
            {
                "argv": sys.argv,
                "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
                "HF_HOME": os.environ.get("HF_HOME"),
                "images": images,
            },
            fh,
        )
if not images:
    err(f"FileNotFoundError: [Errno 2] No such file or directory: '{folder}/*.png'\n")
    sys.exit(1)
start_summary(images=1, epochs=1)
out("epoch 1/1")
err(bar(0, 1))
err(bar(1, 1, 0.123))
path = final_lora_path()
out(f"saving checkpoint: {path}")
write_lora(path)
out("model saved.")
