"""manage.py import_dataset: sd-scripts layout, flat folders, zip, bad input."""

import zipfile
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from datasets.models import Dataset
from tests.factories import make_image_bytes


def run(*args):
    out = StringIO()
    call_command("import_dataset", *map(str, args), stdout=out)
    return out.getvalue()


def test_imports_sd_scripts_layout_and_prints_id_last(student, tmp_path):
    subset = tmp_path / "10_sks dog"
    subset.mkdir()
    (subset / "a.png").write_bytes(make_image_bytes("PNG", seed=1))
    (subset / "a.txt").write_text("sks dog, sitting", encoding="utf-8")
    (subset / "b.jpg").write_bytes(make_image_bytes("JPEG", seed=2))
    (tmp_path / "extras").mkdir()
    output = run(tmp_path, "--name", "Dogs", "--owner", student.username)
    dataset = Dataset.objects.get(name="Dogs")
    assert output.strip().splitlines()[-1] == str(dataset.pk)
    assert "Skipped folder 'extras'" in output
    assert (dataset.repeats, dataset.trigger_word, dataset.image_count) == (10, "sks dog", 2)
    assert dataset.owner == student


def test_flat_zip_with_overrides(student, tmp_path):
    archive = tmp_path / "cats.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("c.webp", make_image_bytes("WEBP", seed=1))
        zf.writestr("c.caption", "ohwx cat")
    output = run(
        archive,
        "--name",
        "Cats",
        "--owner",
        student.username,
        "--repeats",
        "4",
        "--trigger",
        "ohwx cat",
    )
    dataset = Dataset.objects.get(pk=int(output.strip().splitlines()[-1]))
    assert (dataset.repeats, dataset.trigger_word, dataset.image_count) == (4, "ohwx cat", 1)
    assert dataset.images.get().caption == "ohwx cat"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tmp}/missing", "--name", "X", "--owner", "alice"], "neither a folder"),
        (["{tmp}", "--name", "X", "--owner", "nobody"], "No user named"),
        (["{tmp}", "--name", "X", "--owner", "alice", "--repeats", "0"], "between 1 and 1000"),
        (["{tmp}/evil.zip", "--name", "X", "--owner", "alice"], "outside the archive"),
        (["{tmp}", "--name", "", "--owner", "alice"], "Nothing imported"),
    ],
)
def test_bad_input_raises_and_creates_nothing(student, tmp_path, args, message):
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("../x.png", make_image_bytes("PNG"))
    with pytest.raises(CommandError, match=message):
        run(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert not Dataset.objects.exists()
