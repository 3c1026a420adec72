"""A LoRA file's metadata, read and rewritten canonically (sdscripts.lora_file)."""

import os

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from sdscripts.lora_file import NotSafetensors, add_metadata, read_metadata, write_metadata

TENSORS = {
    "lora_unet_a.lora_down.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
    "lora_unet_a.alpha": np.array(3.0, dtype=np.float32),
}


def _lora(path, metadata):
    save_file(TENSORS, str(path), metadata)
    return path


def test_added_keys_are_read_back_and_the_tensors_are_untouched(tmp_path):
    path = _lora(tmp_path / "a.safetensors", {"ss_network_dim": "4"})
    data_before = path.read_bytes()[-48:]

    written = add_metadata(path, {"lorastudio_run_id": "7", "title": "caf\u00e9 \u2713"})

    assert written == read_metadata(path)
    assert read_metadata(path) == {
        "ss_network_dim": "4",
        "lorastudio_run_id": "7",
        "title": "caf\u00e9 \u2713",
    }
    assert path.read_bytes()[-48:] == data_before
    with safe_open(str(path), "np") as fh:
        assert fh.metadata()["lorastudio_run_id"] == "7"
        assert (
            fh.get_tensor("lora_unet_a.lora_down.weight") == TENSORS["lora_unet_a.lora_down.weight"]
        ).all()


def test_the_same_metadata_in_any_order_gives_the_same_bytes(tmp_path):
    keys = {f"k{i}": str(i) for i in range(30)}
    a = _lora(tmp_path / "a.safetensors", keys)
    b = _lora(tmp_path / "b.safetensors", dict(reversed(keys.items())))
    write_metadata(a, keys)
    write_metadata(b, dict(reversed(keys.items())))
    assert a.read_bytes() == b.read_bytes()
    header_length = int.from_bytes(a.read_bytes()[:8], "little")
    assert header_length % 8 == 0


def test_rewriting_replaces_the_file_so_a_hard_link_keeps_the_old_bytes(tmp_path):
    path = _lora(tmp_path / "a.safetensors", {})
    link = tmp_path / "link.safetensors"
    os.link(path, link)
    add_metadata(path, {"lorastudio_run_id": "1"})
    assert read_metadata(link) == {}
    assert read_metadata(path) == {"lorastudio_run_id": "1"}
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    "content",
    [b"", b"short", (10**12).to_bytes(8, "little") + b"{}", (4).to_bytes(8, "little") + b"[1]!"],
)
def test_a_file_that_is_not_safetensors_is_refused(tmp_path, content):
    path = tmp_path / "x.safetensors"
    path.write_bytes(content)
    with pytest.raises(NotSafetensors):
        add_metadata(path, {"a": "b"})
    assert path.read_bytes() == content


def test_metadata_must_be_text(tmp_path):
    path = _lora(tmp_path / "a.safetensors", {})
    with pytest.raises(ValueError, match="must be text"):
        write_metadata(path, {"lorastudio_run_id": 7})
