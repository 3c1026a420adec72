"""Fake trainer: a chatty run — N log lines interleaved with "\\r" progress bars (exit 0).

Accepts any argv. N comes from FAKE_TRAINER_LINES (default 10000). stdout: the start
summary, then N numbered lines "flood line K of N" with "epoch E/2" every N/2 lines;
stderr: a "steps:" bar update (with avr_loss) after every line, another bar ("caching
latents") at the start, a log line glued right after a bar now and then, and a final newline.
When --output_dir and --output_name are given it writes a tiny valid final LoRA
{output_dir}/{output_name}.safetensors, so the run counts as a success.
"""

import os
import sys

from _common import bar, err, final_lora_path, out, write_lora

lines = int(os.environ.get("FAKE_TRAINER_LINES", "10000"))
total = max(lines, 1)
out("running training / 学習開始")
out(f"  num train images * repeats / 学習画像の数×繰り返し回数: {total}")
out("  num epochs / epoch数: 2")
out("  batch size per device / バッチサイズ: 1")
out(f"  total optimization steps / 学習ステップ数: {total}")
err("\rcaching latents:   0%|          | 0/2 [00:00<?, ?it/s]")
err("\rcaching latents: 100%|██████████| 2/2 [00:00<00:00, 812.3it/s]\n")
err(bar(0, total))
half = max(lines // 2, 1)
for k in range(1, lines + 1):
    if k in (1, half + 1):
        out(f"epoch {1 if k == 1 else 2}/2")
    out(f"flood line {k} of {lines}")
    err(bar(k, total, 1.0 / k))
    if k % 1000 == 0:
        err(f"INFO glued log line after bar {k}\n")
err("\n")
path = final_lora_path()
if path:
    out(f"saving checkpoint: {path}")
    write_lora(path)
    out("model saved.")
sys.exit(0)
