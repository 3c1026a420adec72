"""The sample-prompt file the trainer reads: one line per prompt, built in one place.

sd-scripts reads `--w`, `--h`, `--s`, `--d`, `--n`, `--l`, `--g` and more from each line
(split on " --"). The options of a line come from the run's architecture (Chroma needs
`--g 0` and a real CFG scale); the text comes from the user. Pure: no Django, no I/O.
"""

from __future__ import annotations

from sdscripts.architectures import ArchSpec


def _option_text(options: dict) -> str:
    parts = []
    for name, value in options.items():
        text = format(value, "g") if isinstance(value, float) else str(value)
        parts.append(f"--{name} {text}")
    return " ".join(parts)


def prompt_line(prompt: str, arch: ArchSpec, params: dict) -> str:
    """One line of the prompt file: the prompt on one line, then the architecture's options."""
    text = " ".join(prompt.split())
    options = _option_text(dict(arch.sample_options))
    return f"{text} {options}" if options else text


def prompt_file_text(prompts: tuple[str, ...], arch: ArchSpec, params: dict) -> str:
    """The whole prompt file for a run's sample prompts ("" when it samples nothing)."""
    lines = [prompt_line(p, arch, params) for p in prompts if p.strip()]
    return "".join(line + "\n" for line in lines)
