"""Sample prompt lines: user text can carry no sd-scripts option; the run sets the costs."""

import re

import pytest

from sdscripts.architectures import spec
from sdscripts.params import validate_params
from sdscripts.prompts import MAX_PROMPT_CHARS, MAX_SAMPLE_PROMPTS, clean_prompt, prompt_file_text

SDXL = validate_params("sdxl", {"resolution": 768, "sample_steps": 12, "seed": 7})


def parsed_like_sd_scripts(line: str) -> dict:
    """What sd-scripts' line_to_prompt_dict reads from a line (its patterns, in its order)."""
    found = {}
    for part in line.split(" --"):
        for key in ("w", "h", "d", "s", "l", "g", "n", "ss", "cn", "ctr", "rcfg", "fs"):
            m = re.match(rf"{key} (.+)", part, re.IGNORECASE)
            if m:
                found[key] = m.group(1)
                break
    return found


@pytest.mark.parametrize(
    "hostile",
    [
        "a dog --w 4096 --h 4096 --s 1000 --d 1 --n ugly",  # a caption
        "sks --w 4096 --h 4096",  # a trigger word
        "a dog ---w 4096 ----s 999",
        "s 1000 steps of a dog",  # sd-scripts also matches options at the start of the text
        "W 4096 wide",
        "cn /etc/passwd",
        "# a comment line sd-scripts would skip",
        "a dog\n--w 4096\r\n--s 1000",
        "a dog \x00--w\x004096",
    ],
)
def test_hostile_text_carries_no_option_and_the_run_sets_size_steps_and_seed(hostile):
    text = prompt_file_text((hostile,), spec("sdxl"), SDXL)
    [line] = text.splitlines()
    assert parsed_like_sd_scripts(line) == {"w": "768", "h": "768", "s": "12", "d": "7"}
    assert not line.startswith("#")


def test_count_and_length_are_bounded():
    text = prompt_file_text(("x" * 5000,) * 10, spec("sdxl"), SDXL)
    lines = text.splitlines()
    assert len(lines) == MAX_SAMPLE_PROMPTS
    assert all(len(line.split(" --")[0]) == MAX_PROMPT_CHARS for line in lines)
    # Each prompt gets its own seed, in order.
    assert [parsed_like_sd_scripts(line)["d"] for line in lines] == ["7", "8", "9", "10"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a  photo\tof\nsks   dog", "a photo of sks dog"),
        ("red--blue", "red-blue"),
        ("  ", ""),
        ("s 1000 steps", "s\u00a01000 steps"),
    ],
)
def test_clean_prompt_keeps_the_words(text, expected):
    assert clean_prompt(text) == expected
