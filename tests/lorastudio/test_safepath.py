"""Names and paths from user data stay names, and inside their folder."""

import pytest

from lorastudio.safepath import inside, safe_name


@pytest.mark.parametrize(
    "text, expected",
    [
        ("alice", "alice"),
        ("..", "fallback"),
        (".", "fallback"),
        ("--seed", "seed"),
        ("-", "fallback"),
        ("../../etc", "etc"),
        ("a/b\\c", "a_b_c"),
        ("näive.user+x@lab", "näive.user+x@lab"),
        (".hidden", "hidden"),
        ("", "fallback"),
    ],
)
def test_safe_name_never_yields_a_path_an_option_or_a_hidden_file(text, expected):
    assert safe_name(text, fallback="fallback") == expected


def test_spaces_are_kept_only_where_asked():
    assert safe_name("sks dog", fallback="x", spaces=True) == "sks dog"
    assert safe_name("sks dog", fallback="x") == "sks_dog"


@pytest.mark.parametrize("names", [("..",), ("a", "..", ".."), ("/etc",), ("",)])
def test_inside_refuses_what_would_leave_the_folder(tmp_path, names):
    with pytest.raises(ValueError):
        inside(tmp_path, *names)


def test_inside_joins_names_under_the_folder(tmp_path):
    assert inside(tmp_path, "alice", "lora.safetensors") == tmp_path / "alice" / "lora.safetensors"
