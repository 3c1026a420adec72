"""A fake sd-scripts that replays the console output of a real run, byte for byte.

It reads `replay_fixture.txt` beside itself (the path of a capture in tests/fixtures/sdscripts,
see its README), writes every recorded chunk to stdout or stderr in the recorded order, and
exits with the recorded status (or dies by the recorded signal). What the real run wrote to
disk is written too, where the runner looks: the recorded output folder and name are mapped
onto this run's `--output_dir` and `--output_name`; an announced LoRA is written when its
"saving checkpoint" line passes, and a sample PNG when a sample's progress bar closes.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import sys
from pathlib import Path

from _common import arg, write_lora  # noqa: I001  (a sibling of this file in the fake folder)

SAMPLE_DONE = re.compile(rb"\r100%\|[^\r\n]*\]\n")
SAVING = re.compile(r"saving checkpoint: (\S+\.safetensors)")
EPOCH = re.compile(r"^epoch (\d+)/\d+$", re.MULTILINE)
SAMPLING = re.compile(r"generating sample images at step[^:]*: (\d+)")
SEED = re.compile(r"^seed: (\d+)$", re.MULTILINE)
PROMPT = re.compile(r"^prompt: ", re.MULTILINE)


def read_chunks(path: Path) -> tuple[list[tuple[str, bytes]], int]:
    chunks, code = [], 0
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if "exit" in row:
            code = row["exit"]
        else:
            chunks.append((row["fd"], base64.b64decode(row["b64"])))
    return chunks, code


def recorded_prefix(chunks) -> bytes:
    """The recorded `<output_dir>/<output_name>` (from its first saved LoRA), or b""."""
    stdout = b"".join(data for fd, data in chunks if fd == "stdout").decode(errors="replace")
    match = SAVING.search(stdout)
    if not match:
        return b""
    return re.sub(r"(-\d{6}|-step\d{8})?\.safetensors$", "", match[1]).encode()


def png_bytes() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (128, 128, 128)).save(out, format="PNG")
    return out.getvalue()


def main() -> int:
    fixture = Path((Path(__file__).parent / "replay_fixture.txt").read_text().strip())
    chunks, code = read_chunks(fixture)
    output_dir, output_name = arg("output_dir", "."), arg("output_name", "lora")
    old = recorded_prefix(chunks)
    new = f"{output_dir}/{output_name}".encode()
    by_step = "--sample_every_n_steps" in sys.argv
    stdout_text, stderr_tail = "", b""
    epoch, step, index, seed, prompts = 1, 0, 0, 0, 0
    for fd, data in chunks:
        if old:
            data = data.replace(old, new)
        os.write(1 if fd == "stdout" else 2, data)
        if fd == "stdout":
            stdout_text += data.decode(errors="replace")
            lines, _, stdout_text = stdout_text.rpartition("\n")
            for saved in SAVING.findall(lines):
                write_lora(saved)
            epoch = int(EPOCH.findall(lines)[-1]) if EPOCH.search(lines) else epoch
            if SAMPLING.search(lines):
                step, index, prompts = int(SAMPLING.findall(lines)[-1]), 0, 0
            prompts += len(PROMPT.findall(lines))
            seed = int(SEED.findall(lines)[-1]) if SEED.search(lines) else seed
        else:
            stderr_tail += data
            while SAMPLE_DONE.search(stderr_tail):
                stderr_tail = stderr_tail[SAMPLE_DONE.search(stderr_tail).end() :]
                if index >= prompts:
                    continue  # another unlabeled bar (caching), not a sample
                where = f"{step:06d}" if by_step else f"e{epoch:06d}"
                name = f"{output_name}_{where}_{index:02d}_20260101000000_{seed}.png"
                sample_dir = Path(output_dir) / "sample"
                sample_dir.mkdir(parents=True, exist_ok=True)
                (sample_dir / name).write_bytes(png_bytes())
                index += 1
            stderr_tail = stderr_tail[-4096:]
    if code < 0:
        os.kill(os.getpid(), -code)
        signal.pause()
    return code


if __name__ == "__main__":
    sys.exit(main())
