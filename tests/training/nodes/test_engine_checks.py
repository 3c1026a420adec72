"""check_node asks the node's own sd-scripts Python: optional optimizer modules, tokenizers.

The node's sd-scripts is a fake (tests/fake_home.py) whose tokenize strategies look for the
tokenizers where sd-scripts and transformers do: the tokenizer cache folder, then the Hugging
Face cache of HF_HOME, then the Hub (which answers only with FAKE_HUB_ONLINE=1).
"""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.factories import make_base_model, make_node
from tests.fake_home import make_fake_sdscripts, make_hub_cache
from training.models import GPUNode

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
CLIP_L = "openai/clip-vit-large-patch14"
CLIP_G = "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k"


@pytest.fixture(autouse=True)
def _one_fake_gpu(settings):
    settings.LORASTUDIO_GPU_BACKEND = "fake"
    settings.LORASTUDIO_FAKE_GPUS = "24576:Fake 4090"


def node_with(tmp_path, **kw):
    """A node whose sd-scripts is the fake, with an SDXL and an SD 1.5 base model."""
    folder = make_fake_sdscripts(tmp_path / "sd-scripts", modules=kw.pop("modules", ()))
    make_base_model(name="xl", architecture="sdxl", checkpoint="xl.safetensors")
    make_base_model(name="v15", architecture="sd15", checkpoint="v15.safetensors")
    make_base_model(name="off", architecture="flux1_dev", enabled=False)
    return make_node(
        name="gpu-a",
        sdscripts_dir=str(folder),
        sdscripts_python=str(folder / "venv/bin/python"),
        work_dir=str(tmp_path / "work"),
        **kw,
    )


def check(*args) -> tuple[str, str]:
    """check_node's report and its error ("" when it passed)."""
    out = StringIO()
    try:
        call_command("check_node", "--name", "gpu-a", "--min-free-gb", "0", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), str(exc)
    return out.getvalue(), ""


def test_missing_optimizer_modules_are_stored_and_warned_with_the_pip_fix(tmp_path):
    node = node_with(tmp_path, modules=("bitsandbytes", "transformers"))
    history = GPUNode.history.count()
    text, _ = check()
    assert "[warn] optimizer modules: cannot import dadaptation for DAdaptAdam: " in text
    assert "lion_pytorch for Lion: ModuleNotFoundError" in text
    python = node.sdscripts_python
    assert f"fix: {python} -m pip install dadaptation lion_pytorch prodigyopt schedulefree" in text
    node.refresh_from_db()
    assert node.engine_modules == {
        "bitsandbytes": True, "dadaptation": False, "lion_pytorch": False,
        "prodigyopt": False, "schedulefree": False, "transformers": True,
    }  # fmt: skip
    assert GPUNode.history.count() == history  # written with update(): no history row


def test_every_module_importable_is_ok(tmp_path):
    node_with(tmp_path, modules=("bitsandbytes", "dadaptation", "lion_pytorch", "prodigyopt",
                                 "schedulefree", "transformers"))  # fmt: skip
    text, _ = check()
    assert "[ok  ] optimizer modules: all import: bitsandbytes, dadaptation," in text


def test_tokenizers_load_offline_from_the_tokenizer_cache_folder(tmp_path):
    cache = tmp_path / "tokenizers"
    for folder in ("openai_clip-vit-large-patch14", "laion_CLIP-ViT-bigG-14-laion2B-39B-b160k"):
        (cache / folder).mkdir(parents=True)
    node_with(tmp_path, tokenizer_cache_dir=str(cache))
    text, error = check()
    assert f"[ok  ] tokenizers sd15: loads {CLIP_L}, also with the Hub off" in text
    assert f"[ok  ] tokenizers sdxl: loads {CLIP_L}, {CLIP_G}, also with the Hub off" in text
    assert "tokenizers flux1_dev" not in text  # its only base model is disabled
    assert error == ""


def test_a_hugging_face_cache_needs_hf_hub_offline_on_a_node_without_internet(tmp_path):
    # transformers asks the Hub about a cached tokenizer unless HF_HUB_OFFLINE is set, so
    # without internet the first run fails although the cache holds the tokenizer.
    hf_home = make_hub_cache(tmp_path / "hf", [CLIP_L])
    node = node_with(tmp_path, trainer_env={"HF_HOME": str(hf_home)})
    text, error = check()
    assert (
        f"[fail] tokenizers sd15: cannot load {CLIP_L} as a run does: ConnectionError: "
        "HTTPSConnectionPool(host='huggingface.co', port=443): Max retries exceeded; with the "
        "Hub off they load"
    ) in text
    assert "fix: this node cannot reach huggingface.co: register_node --trainer-env " in text
    assert f"[fail] tokenizers sdxl: cannot load {CLIP_L}, {CLIP_G} (no tokenizer cache " in text
    assert error == "2 check(s) failed: tokenizers sd15, tokenizers sdxl"

    node.trainer_env["HF_HUB_OFFLINE"] = "1"
    node.save()
    text, error = check()
    assert f"[ok  ] tokenizers sd15: loads {CLIP_L} offline" in text
    assert error == "1 check(s) failed: tokenizers sdxl"


def test_an_offline_node_without_tokenizers_fails_with_the_fix(tmp_path):
    cache = tmp_path / "tokenizers"
    (cache / "openai_clip-vit-large-patch14").mkdir(parents=True)
    node_with(tmp_path, tokenizer_cache_dir=str(cache), trainer_env={"HF_HUB_OFFLINE": "1"})
    text, error = check()
    assert f"[ok  ] tokenizers sd15: loads {CLIP_L} offline" in text
    assert (
        f"[fail] tokenizers sdxl: cannot load {CLIP_L}, {CLIP_G} ({cache} lacks {CLIP_G}): "
        "OSError: We couldn't connect to 'https://huggingface.co'"
    ) in text
    assert "fix: give the node its tokenizers: register_node --tokenizer-cache-dir DIR" in text
    assert "--trainer-env HF_HUB_OFFLINE=1" in text
    assert error == "1 check(s) failed: tokenizers sdxl"


def test_tokenizers_from_the_hub_only_are_a_warning(tmp_path):
    node_with(tmp_path, trainer_env={"FAKE_HUB_ONLINE": "1"})
    text, error = check()
    assert (
        f"[warn] tokenizers sd15: loads {CLIP_L} only from the Hugging Face Hub (no tokenizer "
        "cache folder; not in the default Hugging Face cache)"
    ) in text
    assert "fix: runs fail whenever this node cannot reach huggingface.co; for offline" in text
    assert error == ""


def test_sd_scripts_fills_the_tokenizer_cache_folder_when_it_loads_from_the_hub(tmp_path):
    cache = tmp_path / "tokenizers"
    node_with(tmp_path, tokenizer_cache_dir=str(cache), trainer_env={"FAKE_HUB_ONLINE": "1"})
    text, error = check()
    assert (
        f"[ok  ] tokenizers sd15: loads {CLIP_L}, also with the Hub off (sd-scripts just saved "
        f"them into {cache})"
    ) in text
    assert error == ""
    again, _ = check()
    assert f"[ok  ] tokenizers sd15: loads {CLIP_L}, also with the Hub off\n" in again


def test_a_node_without_internet_or_tokenizers_fails(tmp_path):
    node_with(tmp_path)
    text, error = check()
    assert (
        f"[fail] tokenizers sd15: cannot load {CLIP_L} (no tokenizer cache folder; not in the "
        "default Hugging Face cache): OSError: We couldn't connect to 'https://huggingface.co'"
    ) in text
    assert "; nor from the Hub: ConnectionError: HTTPSConnectionPool(host='huggingface.co'" in text
    assert error == "2 check(s) failed: tokenizers sd15, tokenizers sdxl"


def test_sd_scripts_that_does_not_import_is_asked_nothing_more(tmp_path):
    node = node_with(tmp_path)
    (tmp_path / "sd-scripts/library/train_util.py").unlink()
    text, error = check()
    assert "cannot import sd-scripts" in text
    assert "optimizer modules" not in text and "tokenizers" not in text
    node.refresh_from_db()
    assert node.engine_modules == {}


def test_the_check_with_the_hub_off_fills_an_empty_tokenizer_cache_folder(tmp_path):
    hf_home = make_hub_cache(tmp_path / "hf", [CLIP_L])
    cache = tmp_path / "tokenizers"
    node_with(tmp_path, tokenizer_cache_dir=str(cache), trainer_env={"HF_HOME": str(hf_home)})
    text, _ = check()
    assert (
        f"; with the Hub off they load (sd-scripts just saved them into {cache})\n"
        "       fix: this node cannot reach huggingface.co: register_node --trainer-env "
        "HF_HUB_OFFLINE=1 (or the node's trainer environment in the admin); or check again: "
        "runs read the tokenizer cache folder first"
    ) in text
    again, _ = check()
    assert f"[ok  ] tokenizers sd15: loads {CLIP_L}, also with the Hub off\n" in again
