"""The sample-prompt file the trainer reads: every line built by `prompt_line`, and only there.

sd-scripts reads sampling options out of each line (library/train_util.line_to_prompt_dict):
it splits the line on " --" and tries every option pattern (`w 4096`, `s 1000`, `n …`,
`cn PATH`, …) on each part, the prompt text included. Prompt text comes from users (the
prompt box, a dataset's captions, its trigger word), so it is cleaned until it can carry no
option, and the options a sample costs (size, steps, seed) come from the run's own validated
parameters, appended last so that they win. Pure: no Django, no I/O.
"""

from __future__ import annotations

import re

from sdscripts.architectures import ArchSpec
from sdscripts.params import PARAMS, default_for

# The option keys sd-scripts recognises in a prompt line (its line_to_prompt_dict).
OPTION_KEYS = ("w", "h", "d", "s", "l", "g", "n", "ss", "cn", "ctr", "rcfg", "fs")
MAX_SAMPLE_PROMPTS = 4
MAX_PROMPT_CHARS = 1000
_LEADING_OPTION = re.compile(rf"^({'|'.join(OPTION_KEYS)}) ", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_prompt(text: str) -> str:
    """User text as prompt text that no sd-scripts option can hide in.

    One line; runs of hyphens become one ("--w" cannot start an option); no leading "#"
    (sd-scripts skips such lines as comments); a start that reads as an option ("s 1000 …")
    gets a no-break space after its key, which the text encoders read as a space; at most
    MAX_PROMPT_CHARS characters.
    """
    text = " ".join(_CONTROL.sub(" ", text).split())
    text = re.sub(r"-{2,}", "-", text).lstrip("#").strip()
    text = _LEADING_OPTION.sub(lambda m: m.group(1) + "\u00a0", text)
    return text[:MAX_PROMPT_CHARS].strip()


def _format(value: object) -> str:
    return format(value, "g") if isinstance(value, float) else str(value)


def prompt_line(prompt: str, index: int, arch: ArchSpec, params: dict) -> str:
    """The line for the run's `index`-th prompt: cleaned text, then the run's own options."""
    resolution = int(params["resolution"])
    options = {
        "w": resolution,
        "h": resolution,
        # Runs queued before sample_steps existed get its default.
        "s": int(params.get("sample_steps") or default_for(PARAMS["sample_steps"], arch.key)),
        "d": int(params["seed"]) + index,
        **arch.sample_options,
    }
    return " ".join([clean_prompt(prompt), *(f"--{k} {_format(v)}" for k, v in options.items())])


def sample_prompts(prompts: tuple[str, ...] | list[str]) -> list[str]:
    """The prompts a run samples: non-empty after cleaning, at most MAX_SAMPLE_PROMPTS."""
    return [p for p in prompts if clean_prompt(p)][:MAX_SAMPLE_PROMPTS]


def prompt_file_text(prompts: tuple[str, ...], arch: ArchSpec, params: dict) -> str:
    """The whole prompt file for a run's sample prompts ("" when it samples nothing)."""
    lines = [prompt_line(p, i, arch, params) for i, p in enumerate(sample_prompts(prompts))]
    return "".join(line + "\n" for line in lines)
