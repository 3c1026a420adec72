"""What an evaluation renders, as people type it: one parser for the page, the admin and
`manage.py evaluate`, so each refuses the same input with the same message. No Django.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from sdscripts.prompts import MAX_SAMPLE_PROMPTS, clean_prompt

DEFAULT_STRENGTHS = (0.0, 0.5, 0.8, 1.0)
DEFAULT_SEEDS = (1, 2)
MAX_VALUES = 8  # strengths or seeds of one evaluation
MAX_STRENGTH = 2.0
MAX_SEED = 2**32 - 1  # SwarmUI's seed is an int; ComfyUI's goes to 2**64 - 1
EPOCH_WORDS = ("all", "last")


class OptionError(ValueError):
    """Input an evaluation cannot take: `option` names it, the message says why."""

    def __init__(self, option: str, message: str):
        super().__init__(f"{option}: {message}")
        self.option = option
        self.message = message


def _items(text: str) -> list[str]:
    return [part.strip() for part in str(text).replace(";", ",").split(",") if part.strip()]


def parse_epochs(text: str | Iterable[int] | None) -> str | list[int]:
    """ "all" (every saved epoch and the final LoRA), "last" (the final LoRA), or epochs."""
    if text is None or isinstance(text, str):
        text = (text or "all").strip().lower()
        if text in EPOCH_WORDS:
            return text
        raw = _items(text)
    else:
        raw = [str(e) for e in text]
    epochs = []
    for item in raw:
        if not item.isdigit() or int(item) < 1:
            raise OptionError("epochs", f"{item!r} is not an epoch number (1, 2, …), all or last")
        if int(item) not in epochs:
            epochs.append(int(item))
    if not epochs:
        raise OptionError("epochs", "give epoch numbers (e.g. 1,2), all or last")
    return sorted(epochs)


def parse_strengths(text: str | Iterable[float] | None) -> list[float]:
    """LoRA strengths, ascending; 0 is the base model. Default 0, 0.5, 0.8, 1."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return list(DEFAULT_STRENGTHS)
    raw = _items(text) if isinstance(text, str) else list(text)
    values: list[float] = []
    for item in raw:
        try:
            value = float(item)
        except (TypeError, ValueError):
            raise OptionError("strengths", f"{item!r} is not a number") from None
        if not math.isfinite(value) or abs(value) > MAX_STRENGTH:
            bound = f"{MAX_STRENGTH:g}"
            raise OptionError("strengths", f"{item} is outside -{bound} … {bound}")
        value = round(value, 3)
        if value not in values:
            values.append(value)
    if not values:
        raise OptionError("strengths", "give at least one strength, e.g. 0,0.5,0.8,1")
    if len(values) > MAX_VALUES:
        raise OptionError("strengths", f"at most {MAX_VALUES} strengths")
    return sorted(values)


def parse_seeds(text: str | Iterable[int] | None) -> list[int]:
    """Fixed seeds, in the order given. Default 1, 2."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return list(DEFAULT_SEEDS)
    raw = _items(text) if isinstance(text, str) else list(text)
    seeds: list[int] = []
    for item in raw:
        item = str(item).strip()
        if not item.isdigit() or int(item) > MAX_SEED:
            raise OptionError("seeds", f"{item!r} is not a seed (a whole number 0 … {MAX_SEED})")
        if int(item) not in seeds:
            seeds.append(int(item))
    if not seeds:
        raise OptionError("seeds", "give at least one seed, e.g. 1,2")
    if len(seeds) > MAX_VALUES:
        raise OptionError("seeds", f"at most {MAX_VALUES} seeds")
    return seeds


def parse_prompts(prompts: Iterable[str] | str | None) -> list[str]:
    """Prompts typed by a person: one a line (or a list), cleaned as sample prompts are;
    empty means "use the run's own"."""
    if prompts is None:
        return []
    lines = prompts.splitlines() if isinstance(prompts, str) else list(prompts)
    cleaned = [clean_prompt(str(line)) for line in lines]
    cleaned = [p for p in cleaned if p]
    if len(cleaned) > MAX_SAMPLE_PROMPTS:
        raise OptionError("prompts", f"at most {MAX_SAMPLE_PROMPTS} prompts")
    return cleaned


def text_of(values: Iterable[float]) -> str:
    """Numbers as a person types them back ("0,0.5,0.8,1")."""
    return ",".join(format(v, "g") for v in values)
