"""The demo trainer's training state: `--save_state` folders and `--resume`, as sd-scripts.

sd-scripts saves `{output_name}-{epoch:06d}-state/` at each saved epoch (and
`{output_name}-state/` at the end) with accelerate's `save_state`: the network's weights, the
optimizer, the random states and `train_state.json` ({"current_epoch", "current_step"}).
`--resume DIR` loads them; the epoch to start at is `--initial_epoch` − 1 when given, else
`current_step` // steps per epoch. The demo writes the same files (its own torch pickles) so
that a resumed demo run continues exactly where the saved one stopped: the same weights,
optimizer moments and random generator give the same LoRA an uninterrupted run writes.

Imported only by ``demo_trainer.cli.main`` (torch).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

STATE_FILE = "train_state.json"
WEIGHTS_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.bin"
RANDOM_FILE = "random_states_0.pkl"


def epoch_state_dir(output_dir: Path, output_name: str, epoch: int) -> Path:
    """sd-scripts' EPOCH_STATE_NAME: `{output_name}-{epoch:06d}-state`."""
    return output_dir / f"{output_name}-{epoch:06d}-state"


def last_state_dir(output_dir: Path, output_name: str) -> Path:
    """sd-scripts' LAST_STATE_NAME: `{output_name}-state` (written when training ends)."""
    return output_dir / f"{output_name}-state"


def save_state(folder: Path, adapters: dict, optimizer, generator, *, epoch: int, step: int):
    """Write one state folder: weights, optimizer, random state and train_state.json."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, module in adapters.items():
        tensors[f"{name}.lora_down.weight"] = module.lora_down.weight.detach().contiguous()
        tensors[f"{name}.lora_up.weight"] = module.lora_up.weight.detach().contiguous()
    save_file(tensors, str(folder / WEIGHTS_FILE))
    torch.save(optimizer.state_dict(), folder / OPTIMIZER_FILE)
    torch.save(generator.get_state(), folder / RANDOM_FILE)
    state = {"current_epoch": epoch, "current_step": step}
    (folder / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")


def load_state(folder: Path, adapters: dict, optimizer, generator) -> dict:
    """Load a state folder into the adapters, optimizer and generator; return
    train_state.json's values (FileNotFoundError when the folder is not a state)."""
    folder = Path(folder)
    tensors = load_file(str(folder / WEIGHTS_FILE))
    with torch.no_grad():
        for name, module in adapters.items():
            module.lora_down.weight.copy_(tensors[f"{name}.lora_down.weight"])
            module.lora_up.weight.copy_(tensors[f"{name}.lora_up.weight"])
    optimizer.load_state_dict(torch.load(folder / OPTIMIZER_FILE, weights_only=True))
    generator.set_state(torch.load(folder / RANDOM_FILE, weights_only=True))
    return json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))


def start_epoch(*, initial_epoch: int | None, steps_from_state: int | None, per_epoch: int) -> int:
    """The 0-based epoch a resumed run starts at, as sd-scripts' train_network.py computes it
    without --skip_until_initial_step: --initial_epoch wins over the state's step count."""
    if initial_epoch is not None:
        return initial_epoch - 1
    if steps_from_state and per_epoch:
        return steps_from_state // per_epoch
    return 0
