"""LoRA Studio's DEMO trainer: real LoRA training of a tiny random denoiser on the CPU.

Run as ``python -m demo_trainer`` with the sd-scripts flags our command builder emits for
the ``demo`` architecture. It is not sd-scripts and its LoRAs are useless for real image
models: it exists so the whole product runs end to end on a machine without a GPU. It
prints, writes and exits the way sd-scripts' ``train_network.py --console_log_simple`` does
(start summary, ``epoch N/M``, a tqdm-style ``steps:`` bar on stderr drawn twice per step
as sd-scripts draws it, ``saving checkpoint: PATH``, ``{name}-{epoch:06d}.safetensors``,
samples under ``output_dir/sample``). No Django here; torch is imported only inside
``main`` so importing this module is cheap.

Deterministic: the same dataset, flags and ``--seed`` give the same LoRA file, byte for
byte (one CPU thread, seeded generators, images read in name order). So that the *file*
is reproducible, its metadata holds nothing of the moment or of the run's number: no
``ss_training_started_at``/``ss_training_finished_at`` and no ``ss_output_name`` (which
holds the run's number), unlike sd-scripts; the title, author and description come from
``--metadata_*`` as sd-scripts' do.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from datetime import datetime
from pathlib import Path

from demo_trainer.console import Bar, LossRecorder, format_number, say
from demo_trainer.data import (
    VOCAB_SIZE,
    load_dataset_config,
    read_prompts,
    tag_frequency,
    tokens,
)

NO_DATA_MESSAGE = (
    "No data found. Please verify arguments (train_data_dir must be the parent of folders "
    "with images)"
)
BASE_MODEL_SEED = 20240229  # the frozen "base model" is the same for every run
EMBED_DIM = 32
CHANNELS = 32
SAMPLE_STEPS = 8


def _positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    """argparse type: an integer ≥ 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _positive_float(text: str) -> float:
    """argparse type: a finite float > 0."""
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _resolution(text: str) -> int:
    """argparse type: a square resolution in pixels (8 to 1024)."""
    value = int(text)
    if not 8 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"must be between 8 and 1024, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for the flags the command builder emits for "demo"."""
    parser = argparse.ArgumentParser(
        prog="demo_trainer",
        description="LoRA Studio demo trainer (tiny random denoiser, CPU; not sd-scripts).",
    )
    parser.add_argument("--dataset_config", required=True, help="dataset TOML (sd-scripts)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--output_name", default="last")
    parser.add_argument("--max_train_epochs", type=_non_negative_int, default=1)
    parser.add_argument("--network_dim", type=_positive_int, default=4)
    parser.add_argument("--network_alpha", type=_positive_float, default=1.0)
    parser.add_argument("--learning_rate", type=_positive_float, default=1e-3)
    parser.add_argument("--resolution", type=_resolution, default=64)
    parser.add_argument("--train_batch_size", type=_positive_int, default=1)
    parser.add_argument("--save_every_n_epochs", type=_positive_int, default=None)
    parser.add_argument("--sample_prompts", default=None)
    parser.add_argument("--sample_every_n_epochs", type=_positive_int, default=None)
    parser.add_argument("--seed", type=int, default=42)
    # sd-scripts' training state (demo_trainer.state): save it at each saved epoch and at the
    # end, and continue from a saved one.
    parser.add_argument("--save_state", action="store_true")
    parser.add_argument("--resume", default=None, help="a state folder to continue from")
    parser.add_argument("--initial_epoch", type=_positive_int, default=None)
    # sd-scripts' options of the same names (modelspec.title/author/description).
    parser.add_argument("--metadata_title", default=None)
    parser.add_argument("--metadata_author", default=None)
    parser.add_argument("--metadata_description", default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Train a demo LoRA; return the process exit code (argparse exits 2 on bad flags)."""
    args = build_parser().parse_args(argv)
    say("LoRA Studio DEMO trainer: a tiny random denoiser on the CPU (not sd-scripts)")
    say(f"Loading dataset config from {args.dataset_config}")
    specs = load_dataset_config(args.dataset_config, args.resolution, args.train_batch_size)
    train_items = [item for spec in specs for item in spec.items if not item.is_reg]
    if not train_items:
        say(NO_DATA_MESSAGE)
        return 0

    import torch

    from demo_trainer import model as model_lib
    from demo_trainer import state as state_lib

    torch.set_num_threads(1)  # tiny convs: one thread is as fast and robust on busy cores
    torch.manual_seed(args.seed)
    delay = float(os.environ.get("DEMO_TRAINER_STEP_DELAY", "0") or 0)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    denoiser = model_lib.build_denoiser(BASE_MODEL_SEED, VOCAB_SIZE, EMBED_DIM, CHANNELS)
    lora = model_lib.inject_lora(denoiser, args.network_dim, args.network_alpha)
    torch.manual_seed(args.seed)
    for module in lora.values():
        module.reset_parameters()
    params = [p for module in lora.values() for p in module.trainable_parameters()]
    optimizer = torch.optim.AdamW(params, lr=args.learning_rate, weight_decay=0.01)
    generator = torch.Generator().manual_seed(args.seed)

    batches_per_dataset = []
    for spec in specs:
        images = model_lib.load_images([i.path for i in spec.items], spec.width, spec.height)
        caption_ids = [tokens(i.caption) for i in spec.items]
        repeated = [idx for idx, i in enumerate(spec.items) for _ in range(i.repeats)]
        batches_per_dataset.append((spec, images, caption_ids, repeated))
    num_train = sum(item.repeats for item in train_items)
    num_reg = sum(item.repeats for spec in specs for item in spec.items if item.is_reg)
    steps_per_epoch = sum(
        math.ceil(len(repeated) / spec.batch_size) for spec, _, _, repeated in batches_per_dataset
    )
    epochs = args.max_train_epochs
    total_steps = steps_per_epoch * epochs
    batch_size = specs[0].batch_size

    say("running training / 学習開始")
    say(f"  num train images * repeats / 学習画像の数×繰り返し回数: {num_train}")
    say(f"  num reg images / 正則化画像の数: {num_reg}")
    say(f"  num batches per epoch / 1epochのバッチ数: {steps_per_epoch}")
    say(f"  num epochs / epoch数: {epochs}")
    say(f"  batch size per device / バッチサイズ: {batch_size}")
    say("  gradient accumulation steps / 勾配を合計するステップ数 = 1")
    say(f"  total optimization steps / 学習ステップ数: {total_steps}")

    prompts = read_prompts(args.sample_prompts)
    metadata = {
        "ss_network_module": "demo_trainer",
        "ss_network_dim": str(args.network_dim),
        "ss_network_alpha": format_number(args.network_alpha),
        "ss_num_epochs": str(epochs),
        "ss_base_model_version": "demo",
        "ss_learning_rate": str(args.learning_rate),
        "ss_num_train_images": str(num_train),
        "ss_num_reg_images": str(num_reg),
        "ss_num_batches_per_epoch": str(steps_per_epoch),
        "ss_batch_size_per_device": str(batch_size),
        "ss_resolution": f"({specs[0].width}, {specs[0].height})",
        "ss_seed": str(args.seed),
        "ss_tag_frequency": json.dumps(tag_frequency(train_items), ensure_ascii=False),
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": "demo/lora",
        "modelspec.implementation": "LoRA Studio demo trainer",
        "modelspec.title": args.metadata_title or args.output_name,
        "modelspec.description": args.metadata_description
        or "LoRA Studio demo LoRA (tiny random denoiser; not for real use)",
    }
    if args.metadata_author:
        metadata["modelspec.author"] = args.metadata_author

    def save(path: Path, epoch: int, step: int) -> None:
        say(f"\nsaving checkpoint: {path}")
        meta = dict(metadata, ss_epoch=str(epoch), ss_steps=str(step))
        model_lib.save_lora(lora, str(path), meta)

    def sample(epoch: int, step: int) -> None:
        if not prompts:
            return
        sample_dir = output_dir / "sample"
        sample_dir.mkdir(parents=True, exist_ok=True)
        say(f"\ngenerating sample images at step / サンプル画像生成 ステップ: {step}")
        spec = specs[0]
        for index, (prompt, seed, steps) in enumerate(prompts):
            say(f"prompt: {prompt}")
            seed = args.seed + index if seed is None else seed
            steps = steps or SAMPLE_STEPS
            say(f"width: {spec.width}, height: {spec.height}, sample_steps: {steps}")
            say(f"seed: {seed}")
            stamp = datetime.now().strftime("%Y%m%d%H%M%S")
            path = sample_dir / f"{args.output_name}_e{epoch:06d}_{index:02d}_{stamp}.png"
            model_lib.generate(denoiser, tokens(prompt), seed, spec.width, spec.height, steps, path)

    def save_state(folder: Path, epoch: int, step: int) -> None:
        say(f"save train state to {folder / state_lib.STATE_FILE} at epoch {epoch} step {step}")
        state_lib.save_state(folder, lora, optimizer, generator, epoch=epoch, step=step)

    first_epoch = 0
    if args.resume:
        first_epoch = _resume(args, state_lib, lora, optimizer, generator, steps_per_epoch)
        if first_epoch is None:
            return 1
    elif args.initial_epoch is not None:
        first_epoch = args.initial_epoch - 1
    if first_epoch and first_epoch * steps_per_epoch >= total_steps:
        say(
            "max_train_steps should be greater than initial step: "
            f"{total_steps} vs {first_epoch * steps_per_epoch}"
        )
        return 1
    recorder = LossRecorder()
    # As sd-scripts' after --resume: the bar counts this process's steps out of all of them.
    bar = Bar(total_steps)
    if total_steps:
        bar.show(0)
    global_step = resumed_at = first_epoch * steps_per_epoch
    for epoch in range(first_epoch, epochs):
        say(f"\nepoch {epoch + 1}/{epochs}")
        batches = []
        for spec, images, caption_ids, repeated in batches_per_dataset:
            order = torch.randperm(len(repeated), generator=generator).tolist()
            shuffled = [repeated[i] for i in order]
            for start in range(0, len(shuffled), spec.batch_size):
                batches.append((images, caption_ids, shuffled[start : start + spec.batch_size]))
        for batch_index in torch.randperm(len(batches), generator=generator).tolist():
            images, caption_ids, indices = batches[batch_index]
            captions = [caption_ids[i] for i in indices]
            loss = model_lib.train_step(denoiser, optimizer, images[indices], captions, generator)
            recorder.add(epoch, global_step % steps_per_epoch, loss)
            global_step += 1
            if delay > 0:
                time.sleep(delay)
            bar.show(global_step - resumed_at)  # the step moved; the loss is still the last
            bar.postfix = f"avr_loss={format_number(recorder.average)}"
            bar.show(global_step - resumed_at)
        number = epoch + 1
        every = args.save_every_n_epochs
        if every and number % every == 0 and number < epochs:
            save(output_dir / f"{args.output_name}-{number:06d}.safetensors", number, global_step)
            if args.save_state:
                say(f"\nsaving state at epoch {number}")
                save_state(
                    state_lib.epoch_state_dir(output_dir, args.output_name, number),
                    number,
                    global_step,
                )
        if args.sample_every_n_epochs and number % args.sample_every_n_epochs == 0:
            sample(number, global_step)
    if total_steps:
        bar.close()
    if args.save_state:
        say("\nsaving last state.")
        save_state(state_lib.last_state_dir(output_dir, args.output_name), epochs, global_step)
    final = output_dir / f"{args.output_name}.safetensors"
    save(final, epochs, global_step)
    say("model saved.")
    return 0


def _resume(args, state_lib, lora, optimizer, generator, steps_per_epoch: int) -> int | None:
    """Load `--resume`'s state; return the 0-based epoch to start at (None: it failed)."""
    say(f"resume training from local state: {args.resume}")
    try:
        info = state_lib.load_state(Path(args.resume), lora, optimizer, generator)
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        sys.stderr.write(f"Could not load the training state {args.resume}: {exc}\n")
        return None
    say(f"load train state from {Path(args.resume) / state_lib.STATE_FILE}: {info}")
    steps = int(info.get("current_step") or 0)
    if args.initial_epoch is not None:
        say("steps from the state is ignored because initial_step is specified")
    return state_lib.start_epoch(
        initial_epoch=args.initial_epoch, steps_from_state=steps, per_epoch=steps_per_epoch
    )


if __name__ == "__main__":
    sys.exit(main())
