"""What people type for an evaluation: one parser, one message per mistake."""

import pytest

from training.evaluation.options import (
    OptionError,
    parse_epochs,
    parse_prompts,
    parse_seeds,
    parse_strengths,
)


def test_defaults():
    assert parse_epochs(None) == "all"
    assert parse_strengths(None) == [0.0, 0.5, 0.8, 1.0]
    assert parse_seeds("") == [1, 2]
    assert parse_prompts(None) == []


def test_values_are_cleaned_sorted_and_deduplicated():
    assert parse_epochs(" LAST ") == "last"
    assert parse_epochs("3, 1,3") == [1, 3]
    assert parse_epochs([2, 1]) == [1, 2]
    assert parse_strengths("1, 0.5,0,0.50") == [0.0, 0.5, 1.0]
    assert parse_seeds("5,1,5") == [5, 1]
    assert parse_prompts("a dog\n\n  a --w 4096 cat \n") == ["a dog", "a -w 4096 cat"]


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (parse_epochs, "0", "not an epoch number"),
        (parse_epochs, "two", "not an epoch number"),
        (parse_epochs, ",", "give epoch numbers"),
        (parse_strengths, "strong", "not a number"),
        (parse_strengths, "3", "outside -2 … 2"),
        (parse_strengths, "nan", "outside"),
        (parse_strengths, ",".join(str(i / 10) for i in range(9)), "at most 8"),
        (parse_seeds, "-1", "not a seed"),
        (parse_seeds, str(2**32), "not a seed"),
        (parse_prompts, "a\nb\nc\nd\ne", "at most 4"),
    ],
)
def test_bad_input_names_the_option(parse, text, message):
    with pytest.raises(OptionError, match=message) as info:
        parse(text)
    assert str(info.value).startswith(info.value.option + ":")
