"""check_node --probe: one real training step through the node's sd-scripts, reported.

The node's sd-scripts is a fake (tests/fake_home.py): `one_step` trains as asked and records
what it was given; `replay` plays back the real sd-scripts output of a failure
(tests/fixtures/sdscripts), so the report is what the real failure produces.
"""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.factories import make_base_model, make_node
from tests.fake_home import MODULES, make_fake_sdscripts

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
CLIP_L_FOLDER = "openai_clip-vit-large-patch14"


@pytest.fixture(autouse=True)
def _one_fake_gpu(settings):
    settings.LORASTUDIO_GPU_BACKEND = "fake"
    settings.LORASTUDIO_FAKE_GPUS = "24576:Fake 4090"


def probe_node(tmp_path, trainer, fixture="", *, offline_tokenizers=True, **kw):
    """A node whose sd-scripts is `trainer`, with SD 1.5 and SDXL base models on disk."""
    folder = make_fake_sdscripts(
        tmp_path / "sd-scripts", modules=MODULES, trainer=trainer, fixture=fixture
    )
    models = tmp_path / "models"
    models.mkdir()
    for name in ("v15.safetensors", "xl.safetensors"):
        (models / name).write_bytes(b"weights")
    make_base_model(name="xl", architecture="sdxl", checkpoint="xl.safetensors")
    make_base_model(name="v15", architecture="sd15", checkpoint="v15.safetensors")
    make_base_model(name="gone", architecture="sd15", checkpoint="nowhere.safetensors")
    cache = tmp_path / "tokenizers"
    if offline_tokenizers:
        for repo in ("openai/clip-vit-large-patch14", "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k"):
            (cache / repo.replace("/", "_")).mkdir(parents=True)
    return make_node(
        name="gpu-a",
        sdscripts_dir=str(folder),
        sdscripts_python=str(folder / "venv/bin/python"),
        models_root=str(models),
        work_dir=str(tmp_path / "work"),
        tokenizer_cache_dir=str(cache) if offline_tokenizers else "",
        **kw,
    )


def probe(*args) -> tuple[str, str]:
    """check_node --probe's report and its error ("" when it passed)."""
    out = StringIO()
    try:
        call_command(
            "check_node", "--name", "gpu-a", "--min-free-gb", "0", "--probe", *args, stdout=out
        )
    except CommandError as exc:
        return out.getvalue(), str(exc)
    return out.getvalue(), ""


@pytest.mark.parametrize(
    ("gpus", "where", "device", "precision"),
    [("24576:Fake 4090", "GPU 0 (Fake 4090)", "0", "bf16"), ("", "the CPU", "", "no")],
)
def test_the_probe_trains_one_step_of_the_smallest_model(
    tmp_path, settings, gpus, where, device, precision
):
    settings.LORASTUDIO_FAKE_GPUS = gpus
    record = tmp_path / "record.json"
    node = probe_node(tmp_path, "one_step", trainer_env={"FAKE_TRAINER_RECORD": str(record)})
    text, error = probe()
    assert f"[ok  ] probe: one step of v15 (Stable Diffusion 1.5) on {where} trained in " in text
    assert error == ("1 check(s) failed: GPUs" if not gpus else "")
    seen = json.loads(record.read_text())
    argv = seen["argv"]
    assert argv[0].endswith("/train_network.py")
    assert (
        argv[argv.index("--pretrained_model_name_or_path") + 1]
        == f"{node.models_root}/v15.safetensors"
    )
    assert argv[argv.index("--max_train_steps") + 1] == "1"
    assert argv[argv.index("--tokenizer_cache_dir") + 1] == node.tokenizer_cache_dir
    assert argv[argv.index("--mixed_precision") + 1] == precision
    assert argv[argv.index("--optimizer_type") + 1] == "AdamW"
    assert "--sample_prompts" not in argv and "--max_train_epochs" not in argv
    assert seen["CUDA_VISIBLE_DEVICES"] == device
    assert seen["images"] == {"probe0.png": "a red square", "probe1.png": "a blue circle"}
    assert not list((tmp_path / "work").iterdir())  # its temporary folder is gone


def test_a_damaged_checkpoint_fails_the_probe_with_the_advice_and_the_log(tmp_path):
    probe_node(tmp_path, "replay", "sd15_corrupt_checkpoint")
    text, error = probe()
    models = tmp_path / "models"
    assert (
        "[fail] probe: one step of v15 (Stable Diffusion 1.5) on GPU 0 (Fake 4090) failed "
        f"(model_file): A model file is damaged or not what its architecture needs "
        f"({models}/v15.safetensors): "
    ) in text
    assert "Download it again" in text
    assert "       last lines of its log:" in text
    assert "       | safetensors_rust.SafetensorError: Error while deserializing header" in text
    assert error == "1 check(s) failed: probe"


def test_tokenizers_that_do_not_load_offline_fail_the_check_and_the_probe(tmp_path):
    probe_node(
        tmp_path,
        "replay",
        "sd15_offline_no_tokenizer",
        offline_tokenizers=False,
        trainer_env={"HF_HUB_OFFLINE": "1"},
    )
    text, error = probe()
    assert "[fail] tokenizers sd15: cannot load openai/clip-vit-large-patch14 (no " in text
    assert (
        "failed (config): The trainer could not load its tokenizers: sd-scripts fetches them "
        "from the Hugging Face Hub"
    ) in text
    assert "       | TypeError: expected str, bytes or os.PathLike object, not NoneType" in text
    assert error == "3 check(s) failed: tokenizers sd15, tokenizers sdxl, probe"


def test_a_probe_that_hangs_is_stopped_at_its_timeout(tmp_path):
    probe_node(tmp_path, "hang")
    text, error = probe("--probe-timeout", "2")
    assert "[fail] probe: one step of v15 (Stable Diffusion 1.5) on GPU 0 (Fake 4090) did " in text
    assert "did not finish within 2 s" in text and "fix: read the log below" in text
    assert error == "1 check(s) failed: probe"


def test_without_a_base_model_on_disk_there_is_nothing_to_probe(tmp_path):
    probe_node(tmp_path, "one_step")
    for model in (tmp_path / "models").iterdir():
        model.unlink()
    text, error = probe()
    assert "[fail] probe: no enabled base model has all its files on this node" in text
    assert "fix: register one: scan_models ROOT" in text
    assert "1 check(s) failed" in error


def test_a_probe_timeout_must_be_positive(tmp_path):
    probe_node(tmp_path, "one_step")
    with pytest.raises(CommandError, match="--probe-timeout must be more than 0"):
        call_command("check_node", "--name", "gpu-a", "--probe", "--probe-timeout", "0")
