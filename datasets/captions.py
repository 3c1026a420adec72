"""Caption tools: bulk edits and an approximate CLIP token count (pure functions)."""

from __future__ import annotations

import re

# CLIP's context is 77 tokens including start and end: 75 are left for the caption.
CLIP_TOKEN_LIMIT = 75
# No CLIP tokenizer ships offline with our dependencies, so counts are estimates.
TOKEN_COUNT_IS_APPROXIMATE = True

_TOKEN_RE = re.compile(r"[A-Za-z]+|\d|[^\sA-Za-z\d]")
# CLIP's BPE splits long or rare words; assume one extra token per 7 letters past the first 7.
_LETTERS_PER_TOKEN = 7

TOOLS = ("replace", "prepend_trigger", "append_trigger", "strip", "fill_empty")


def approximate_token_count(text: str) -> int:
    """Estimate CLIP tokens: words (long ones count more), digits and punctuation marks."""
    count = 0
    for piece in _TOKEN_RE.findall(text):
        if piece.isalpha():
            count += 1 + max(0, len(piece) - 1) // _LETTERS_PER_TOKEN
        else:
            count += 1
    return count


def is_over_clip_limit(text: str) -> bool:
    """Whether the caption probably exceeds CLIP's 75-token window."""
    return approximate_token_count(text) > CLIP_TOKEN_LIMIT


def normalize_caption(text: str) -> str:
    """sd-scripts reads only the first line: join lines and squeeze spaces."""
    return " ".join(text.split())


def contains_trigger(caption: str, trigger: str) -> bool:
    """Whether `trigger` appears in `caption` as whole words (case-insensitive)."""
    trigger = trigger.strip()
    if not trigger:
        return True
    pattern = r"(?<!\w)" + re.escape(trigger) + r"(?!\w)"
    return re.search(pattern, caption, flags=re.IGNORECASE) is not None


def find_replace(captions: dict[int, str], find: str, replace: str) -> dict[int, str]:
    """Replace every occurrence of `find` (plain text, case-sensitive) in every caption."""
    if not find:
        return dict(captions)
    return {key: text.replace(find, replace) for key, text in captions.items()}


def add_trigger(captions: dict[int, str], trigger: str, *, at_start: bool) -> dict[int, str]:
    """Prepend or append the trigger word to captions that do not already contain it."""
    trigger = trigger.strip()
    result = {}
    for key, text in captions.items():
        text = text.strip()
        if not trigger or contains_trigger(text, trigger):
            result[key] = text
        elif not text:
            result[key] = trigger
        elif at_start:
            result[key] = f"{trigger}, {text}"
        else:
            result[key] = f"{text}, {trigger}"
    return result


def strip_whitespace(captions: dict[int, str]) -> dict[int, str]:
    """Trim captions, squeeze runs of spaces and join lines (sd-scripts reads one line)."""
    return {key: normalize_caption(text) for key, text in captions.items()}


def fill_empty(captions: dict[int, str], text: str) -> dict[int, str]:
    """Give every empty caption `text`; other captions are left alone."""
    return {key: (value if value.strip() else text.strip()) for key, value in captions.items()}


def apply_tool(
    captions: dict[int, str], tool: str, *, trigger: str = "", find: str = "", replace: str = ""
) -> dict[int, str]:
    """Run one of TOOLS over the captions and return the new captions."""
    if tool == "replace":
        return find_replace(captions, find, replace)
    if tool == "prepend_trigger":
        return add_trigger(captions, trigger, at_start=True)
    if tool == "append_trigger":
        return add_trigger(captions, trigger, at_start=False)
    if tool == "strip":
        return strip_whitespace(captions)
    if tool == "fill_empty":
        return fill_empty(captions, replace or trigger)
    raise ValueError(f"unknown caption tool {tool!r}; use one of {', '.join(TOOLS)}")
