"""Caption bulk tools and the approximate CLIP token count (no database)."""

import pytest

from datasets.captions import (
    CLIP_TOKEN_LIMIT,
    apply_tool,
    approximate_token_count,
    contains_trigger,
    is_over_clip_limit,
)

CAPTIONS = {1: "a dog on grass", 2: "  sks dog   running\nfast ", 3: "", 4: "photo of SKS dog"}


@pytest.mark.parametrize(
    ("tool", "kwargs", "expected"),
    [
        (
            "replace",
            {"find": "dog", "replace": "cat"},
            {1: "a cat on grass", 2: "  sks cat   running\nfast ", 3: "", 4: "photo of SKS cat"},
        ),
        ("replace", {"find": "", "replace": "x"}, CAPTIONS),
        (
            "prepend_trigger",
            {"trigger": "sks dog"},
            {
                1: "sks dog, a dog on grass",
                2: "sks dog   running\nfast",
                3: "sks dog",
                4: "photo of SKS dog",
            },
        ),
        (
            "append_trigger",
            {"trigger": "sks dog"},
            {
                1: "a dog on grass, sks dog",
                2: "sks dog   running\nfast",
                3: "sks dog",
                4: "photo of SKS dog",
            },
        ),
        (
            "strip",
            {},
            {1: "a dog on grass", 2: "sks dog running fast", 3: "", 4: "photo of SKS dog"},
        ),
        (
            "fill_empty",
            {"replace": "a photo"},
            {
                1: "a dog on grass",
                2: "  sks dog   running\nfast ",
                3: "a photo",
                4: "photo of SKS dog",
            },
        ),
        (
            "fill_empty",
            {"trigger": "sks dog"},
            {
                1: "a dog on grass",
                2: "  sks dog   running\nfast ",
                3: "sks dog",
                4: "photo of SKS dog",
            },
        ),
    ],
)
def test_bulk_tools(tool, kwargs, expected):
    assert apply_tool(CAPTIONS, tool, **kwargs) == expected


def test_unknown_tool_is_refused():
    with pytest.raises(ValueError, match="unknown caption tool"):
        apply_tool(CAPTIONS, "shout")


@pytest.mark.parametrize(
    ("caption", "trigger", "found"),
    [
        ("sks dog on grass", "sks dog", True),
        ("SKS DOG, grass", "sks dog", True),
        ("sksdog on grass", "sks", False),
        ("a dog", "sks", False),
        ("anything", "", True),
    ],
)
def test_trigger_is_found_as_whole_words(caption, trigger, found):
    assert contains_trigger(caption, trigger) is found


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("", 0),
        ("a dog", 2),
        ("a dog, on grass.", 6),
        ("photorealistic", 2),
        ("1024 px", 5),
    ],
)
def test_approximate_token_count(text, count):
    assert approximate_token_count(text) == count


def test_long_caption_is_over_clip_limit():
    assert not is_over_clip_limit("word " * CLIP_TOKEN_LIMIT)
    assert is_over_clip_limit("word " * (CLIP_TOKEN_LIMIT + 1))
