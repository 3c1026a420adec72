"""How many steps a run trains, and a training length that suits a dataset (pure).

sd-scripts' count (train_util): one epoch is every training image `num_repeats` times, in
batches of `train_batch_size`; with regularisation images the epoch is twice as long (they are
repeated to match the training images). `--max_train_steps` replaces epochs x steps per epoch
when it is set (the command builder then emits no `--max_train_epochs`). With aspect-ratio
buckets sd-scripts rounds each bucket up to a whole batch, so at batch sizes above 1 a run
may take a few more steps than counted here; at batch 1 the count is exact.
Pure: no Django, no I/O.
"""

from __future__ import annotations

import math

# The epochs proposed when a preset does not say; enough for a sample and a saved copy to
# show the run's progress along the way.
DEFAULT_EPOCHS = 10


def steps_per_epoch(images: int, repeats: int, batch: int, *, with_reg: bool = False) -> int:
    """Optimizer steps in one epoch."""
    samples = max(0, images) * max(1, repeats) * (2 if with_reg else 1)
    return math.ceil(samples / max(1, batch))


def total_steps(
    images: int,
    repeats: int,
    epochs: int,
    batch: int,
    *,
    max_train_steps: int | None = None,
    with_reg: bool = False,
) -> int:
    """The steps a run trains: `max_train_steps` when set, else epochs x steps per epoch."""
    if max_train_steps:
        return int(max_train_steps)
    return steps_per_epoch(images, repeats, batch, with_reg=with_reg) * max(0, epochs)


def _clamp(value: int, bounds: tuple[float | None, float | None]) -> int:
    lo, hi = bounds
    if lo is not None:
        value = max(value, math.ceil(lo))
    if hi is not None:
        value = min(value, math.floor(hi))
    return value


def suggest_length(
    images: int,
    batch: int,
    target_steps: int,
    *,
    epochs: int = DEFAULT_EPOCHS,
    epoch_bounds: tuple[float | None, float | None] = (1, None),
    repeat_bounds: tuple[float | None, float | None] = (1, None),
) -> tuple[int, int]:
    """(repeats, epochs) whose steps come near `target_steps` for `images` images.

    The preset's `epochs` stay when they can (its samples and saved copies are per epoch):
    repeats absorb the dataset's size. A dataset too large for that even at one repeat gets
    fewer epochs instead, within `epoch_bounds`.
    """
    images, batch = max(1, images), max(1, batch)
    per_pass = target_steps * batch / images
    repeats = _clamp(max(1, round(per_pass / max(1, epochs))), repeat_bounds)
    epochs = _clamp(max(1, round(per_pass / repeats)), epoch_bounds)
    return repeats, epochs


def counted(
    images: int,
    repeats: int,
    epochs: int,
    batch: int,
    *,
    max_train_steps: int | None = None,
    with_reg: bool = False,
) -> str:
    """How `total_steps` counted, in words for the new-run page."""
    steps = total_steps(
        images, repeats, epochs, batch, max_train_steps=max_train_steps, with_reg=with_reg
    )
    if max_train_steps:
        return f"{steps} steps: a fixed number of steps."
    reg = " × 2 for the regularisation images" if with_reg else ""
    return (
        f"{steps} steps: {images} image{'s' if images != 1 else ''} × {repeats} "
        f"repeat{'s' if repeats != 1 else ''}{reg} × {epochs} pass{'es' if epochs != 1 else ''}"
        f", {batch} image{'s' if batch != 1 else ''} a step."
    )
