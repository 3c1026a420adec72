"""manage.py export_dataset: sd-scripts folder and TOML subset values."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.factories import make_dataset, make_dataset_images


def test_export_writes_layout_and_prints_subset(student, tmp_path):
    dataset = make_dataset(owner=student, trigger_word="sks dog", repeats=6)
    make_dataset_images(dataset, 2, captions=["sks dog", ""])
    out = StringIO()
    call_command("export_dataset", str(dataset.pk), str(tmp_path / "out"), stdout=out)
    folder = tmp_path / "out" / "6_sks dog"
    assert len(list(folder.glob("*.png"))) == 2 and len(list(folder.glob("*.txt"))) == 1
    text = out.getvalue()
    assert f'image_dir = "{folder.resolve()}"' in text
    assert "num_repeats = 6" in text and 'class_tokens = "sks dog"' in text
    assert 'caption_extension = ".txt"' in text


def test_unknown_dataset_is_an_error(db, tmp_path):
    with pytest.raises(CommandError, match="No dataset with id 999"):
        call_command("export_dataset", "999", str(tmp_path), stdout=StringIO())
    assert list(Path(tmp_path).iterdir()) == []
