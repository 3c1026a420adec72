"""Caption rules and tools: cleaning, bulk edits, an approximate CLIP token count (pure)."""

from __future__ import annotations

import re
from collections.abc import Hashable

# CLIP's context is 77 tokens including start and end: 75 are left for the caption.
CLIP_TOKEN_LIMIT = 75
# No CLIP tokenizer ships offline with our dependencies, so counts are estimates.
TOKEN_COUNT_IS_APPROXIMATE = True

_TOKEN_RE = re.compile(r"[A-Za-z]+|\d|[^\sA-Za-z\d]")
# CLIP's BPE splits long or rare words; assume one extra token per 7 letters past the first 7.
_LETTERS_PER_TOKEN = 7

TOOLS = ("replace", "prepend_trigger", "append_trigger", "strip", "fill_empty")

# Control characters that are not whitespace: C0 except tab, line feed, vertical tab, form
# feed, carriage return and the separators 0x1c-0x1f, DEL, C1 except NEL (0x85); and lone
# surrogates. They are removed, not replaced by a space: PostgreSQL refuses NUL in text, and
# NUL is what a UTF-16 caption file read as UTF-8 holds between its letters. The whitespace
# ones become single spaces, as sd-scripts reads a caption's first line only.
_UNWANTED_CHARACTERS = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\ud800-\udfff]")


class CaptionTooLong(ValueError):
    """Captions are, or would become, longer than the limit.

    `lengths` maps each caption's key (as given to the tool; None for a single caption) to
    its length in characters.
    """

    def __init__(self, lengths: dict[Hashable, int], limit: int) -> None:
        self.lengths = lengths
        self.limit = limit
        super().__init__(f"{self.length:,} characters, over the limit of {limit:,}")

    @property
    def length(self) -> int:
        """The longest of the captions."""
        return max(self.lengths.values())


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


def clean_caption(text: str, *, max_chars: int) -> str:
    """The caption as it is stored: the one rule for every path that writes a caption.

    Removes control characters (see _UNWANTED_CHARACTERS), joins lines and squeezes spaces;
    raises CaptionTooLong when what is left is longer than `max_chars` characters.
    """
    cleaned = normalize_caption(_UNWANTED_CHARACTERS.sub("", text))
    if len(cleaned) > max_chars:
        raise CaptionTooLong({None: len(cleaned)}, max_chars)
    return cleaned


def contains_trigger(caption: str, trigger: str) -> bool:
    """Whether `trigger` appears in `caption` as whole words (case-insensitive)."""
    trigger = trigger.strip()
    if not trigger:
        return True
    pattern = r"(?<!\w)" + re.escape(trigger) + r"(?!\w)"
    return re.search(pattern, caption, flags=re.IGNORECASE) is not None


def find_replace(
    captions: dict[int, str], find: str, replace: str, *, max_chars: int | None = None
) -> dict[int, str]:
    """Replace every occurrence of `find` (plain text, case-sensitive) in every caption.

    With `max_chars`, raises CaptionTooLong, before building any new caption, when a caption
    that holds `find` would grow past it: one short `find` in a long caption could otherwise
    build a caption of gigabytes (its length is judged before cleaning).
    """
    if not find:
        return dict(captions)
    if max_chars is not None and len(replace) > len(find):
        growth = len(replace) - len(find)
        lengths = {key: len(text) + text.count(find) * growth for key, text in captions.items()}
        over = {key: n for key, n in lengths.items() if n > max_chars and find in captions[key]}
        if over:
            raise CaptionTooLong(over, max_chars)
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
    captions: dict[int, str],
    tool: str,
    *,
    trigger: str = "",
    find: str = "",
    replace: str = "",
    max_chars: int | None = None,
) -> dict[int, str]:
    """Run one of TOOLS over the captions and return the new captions.

    The other tools add at most the trigger word or the fill text to a caption; only
    find/replace can multiply its length, so only it checks `max_chars` before it builds.
    """
    if tool == "replace":
        return find_replace(captions, find, replace, max_chars=max_chars)
    if tool == "prepend_trigger":
        return add_trigger(captions, trigger, at_start=True)
    if tool == "append_trigger":
        return add_trigger(captions, trigger, at_start=False)
    if tool == "strip":
        return strip_whitespace(captions)
    if tool == "fill_empty":
        return fill_empty(captions, replace or trigger)
    raise ValueError(f"unknown caption tool {tool!r}; use one of {', '.join(TOOLS)}")
