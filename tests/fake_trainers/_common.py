"""Shared bits of the fake sd-scripts trainers: argv reading, sd-scripts-like output, LoRA files.

No torch here: these scripts must start in milliseconds. A LoRA they write is a valid (tiny)
safetensors file built by hand.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time


def arg(name: str, default: str | None = None) -> str | None:
    """Return the value after --name in sys.argv (sd-scripts style), or default."""
    flag = f"--{name}"
    argv = sys.argv[1:]
    for i, item in enumerate(argv):
        if item == flag and i + 1 < len(argv):
            return argv[i + 1]
        if item.startswith(flag + "="):
            return item.split("=", 1)[1]
    return default


def out(text: str) -> None:
    """Print a line to stdout and flush."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def err(text: str) -> None:
    """Write raw text to stderr and flush."""
    sys.stderr.write(text)
    sys.stderr.flush()


def start_summary(images: int = 12, epochs: int = 2, batch: int = 1) -> int:
    """Print sd-scripts' start-of-training summary; return the total step count."""
    total = images * epochs // batch
    out("running training / 学習開始")
    out(f"  num train images * repeats / 学習画像の数×繰り返し回数: {images}")
    out("  num validation images * repeats / 学習画像の数×繰り返し回数: 0")
    out(f"  num batches per epoch / 1epochのバッチ数: {images // batch}")
    out(f"  num epochs / epoch数: {epochs}")
    out(f"  batch size per device / バッチサイズ: {batch}")
    out("  gradient accumulation steps / 勾配を合計するステップ数 = 1")
    out(f"  total optimization steps / 学習ステップ数: {total}")
    return total


def _clock(seconds: int) -> str:
    """Format seconds the way tqdm does: MM:SS, or H:MM:SS past an hour."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def bar(step: int, total: int, loss: float | None = None, desc: str = "steps") -> str:
    """Return a tqdm-style bar update with its leading carriage return."""
    pct = int(100 * step / total) if total else 0
    filled = pct // 10
    body = "█" * filled + " " * (10 - filled)
    if step == 0:
        tail = "[00:00<?, ?it/s]"
    else:
        remaining = total - step
        tail = f"[{_clock(step)}<{_clock(remaining)},  1.00s/it"
        tail += f", avr_loss={loss:.3g}]" if loss is not None else "]"
    return f"\r{desc}: {pct:3d}%|{body}| {step}/{total} {tail}"


def write_lora(path: str) -> None:
    """Write a tiny valid safetensors file with sd-scripts-style LoRA keys."""
    tensors = {
        "lora_unet_fake.lora_down.weight": ([1, 2], b"\x00" * 8),
        "lora_unet_fake.lora_up.weight": ([2, 1], b"\x00" * 8),
        "lora_unet_fake.alpha": ([], b"\x00\x00\x80\x3f"),
    }
    header: dict[str, object] = {"__metadata__": {"ss_network_dim": "1", "ss_fake": "true"}}
    data = b""
    for key, (shape, raw) in tensors.items():
        header[key] = {
            "dtype": "F32",
            "shape": shape,
            "data_offsets": [len(data), len(data) + len(raw)],
        }
        data += raw
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(blob)) + blob + data)


def final_lora_path() -> str | None:
    """Where sd-scripts would write the final LoRA, from --output_dir/--output_name."""
    output_dir, name = arg("output_dir"), arg("output_name")
    if not output_dir or not name:
        return None
    return os.path.join(output_dir, f"{name}.safetensors")


def pause(seconds: float) -> None:
    """Sleep a little (fakes the time a training step takes)."""
    time.sleep(seconds)
