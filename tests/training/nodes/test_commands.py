"""scan_models, register_node and check_node on a fake workstation home."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.factories import make_base_model, make_node
from tests.fake_home import COMMIT, make_fake_home, make_hub_cache
from training.models import BaseModel, GPUNode


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def home(tmp_path):
    return make_fake_home(tmp_path / "home")


@pytest.mark.django_db
def test_scan_models_dry_run_lists_models_and_registers_nothing(home):
    out = run("scan_models", str(home), "--dry-run")
    assert "Would register sd3.5_large (sd35_large)" in out
    assert "Would register flux1-dev (flux1_dev)" in out
    assert "Would register sd_xl_base_1.0 (sdxl)" in out
    assert BaseModel.objects.count() == 0


@pytest.mark.django_db
def test_scan_models_registers_paths_relative_to_the_root(home):
    run("scan_models", str(home))
    sd35 = BaseModel.objects.get(name="sd3.5_large")
    assert sd35.architecture == "sd35_large"
    assert sd35.checkpoint == (
        "SwarmUI/Models/Stable-Diffusion/OfficialStableDiffusion/sd3.5_large.safetensors"
    )
    assert sd35.t5xxl == "SwarmUI/Models/clip/t5xxl_fp16.safetensors"
    flux = BaseModel.objects.get(name="flux1-dev")
    assert flux.ae == "SwarmUI/Models/VAE/ae.safetensors"
    assert all((home / p).is_file() for p in flux.model_files(str(home)).values())


@pytest.mark.django_db
def test_scan_models_twice_changes_nothing(home):
    run("scan_models", str(home))
    history = BaseModel.history.count()
    run("scan_models", str(home))
    assert BaseModel.objects.count() == 3
    assert BaseModel.history.count() == history


@pytest.mark.django_db
def test_scan_models_skips_a_checkpoint_without_its_encoders(tmp_path):
    path = tmp_path / "ComfyUI/models/unet/flux1-schnell.safetensors"
    path.parent.mkdir(parents=True)
    path.write_text("")
    out = run("scan_models", str(tmp_path))
    assert "Skipped flux1-schnell (flux1_schnell): no clip_l, t5xxl, ae found" in out
    assert BaseModel.objects.count() == 0


@pytest.mark.django_db
def test_scan_models_refuses_a_missing_folder(tmp_path):
    with pytest.raises(CommandError, match="is not a folder"):
        run("scan_models", str(tmp_path / "nope"))


@pytest.mark.django_db
def test_register_node_detects_the_workstation(home):
    out = run("register_node", "--name", "ws1", "--detect", str(home), "--no-probe")
    node = GPUNode.objects.get(name="ws1")
    assert node.sdscripts_dir == str(home / "sd-scripts")
    assert node.sdscripts_python == str(home / "sd-scripts/venv/bin/python")
    assert node.lora_dir == str(home / "SwarmUI/Models/Lora")
    assert node.models_root == str(home)
    assert f"ComfyUI: {home / 'ComfyUI'}" in out
    assert "Registered node ws1" in out


@pytest.mark.django_db
def test_register_node_options_override_and_keep_other_fields(home):
    run("register_node", "--name", "ws1", "--detect", str(home), "--no-probe")
    run("register_node", "--name", "ws1", "--comfyui-url", "http://127.0.0.1:8190")
    node = GPUNode.objects.get(name="ws1")
    assert node.comfyui_url == "http://127.0.0.1:8190"
    assert node.sdscripts_dir == str(home / "sd-scripts")


@pytest.mark.django_db
def test_register_node_dry_run_changes_nothing(home):
    out = run("register_node", "--name", "ws1", "--detect", str(home), "--no-probe", "--dry-run")
    assert f"sdscripts_dir: {home / 'sd-scripts'}" in out
    assert "Would register node ws1" in out
    assert not GPUNode.objects.exists()


@pytest.mark.django_db
def test_register_node_bad_values_change_nothing():
    make_node(name="ws1", comfyui_url="http://127.0.0.1:8188")
    with pytest.raises(CommandError, match="comfyui_url"):
        run("register_node", "--name", "ws1", "--comfyui-url", "not a url")
    with pytest.raises(CommandError, match="name"):
        run("register_node", "--name", "bad name!")
    assert GPUNode.objects.get(name="ws1").comfyui_url == "http://127.0.0.1:8188"
    assert GPUNode.objects.count() == 1


@pytest.fixture
def ready_node(home, settings, tmp_path):
    settings.LORASTUDIO_GPU_BACKEND = "fake"
    settings.LORASTUDIO_FAKE_GPUS = "24576:Fake 4090"
    run("register_node", "--name", "ws1", "--detect", str(home), "--no-probe")
    # A workstation with internet (the fake Hub answers): the detected Hugging Face cache
    # serves the tokenizers offline too.
    run("register_node", "--name", "ws1", "--work-dir", str(tmp_path / "work"),
        "--trainer-env", "FAKE_HUB_ONLINE=1")  # fmt: skip
    run("scan_models", str(home))
    return GPUNode.objects.get(name="ws1")


@pytest.mark.django_db
def test_check_node_passes_on_a_ready_node_and_records_the_version(ready_node):
    out = run("check_node", "--name", "ws1", "--min-free-gb", "0")
    assert "[ok  ] sd-scripts Python" in out
    assert "[ok  ] GPUs: fake: 0: Fake 4090 24576 MiB" in out
    assert "[ok  ] model sd3.5_large: all files present" in out
    assert "[ok  ] tokenizers sdxl: loads openai/clip-vit-large-patch14, laion/" in out
    assert "[ok  ] tokenizers flux1_dev: loads openai/clip-vit-large-patch14, google/" in out
    assert "[ok  ] LoRA folder" in out
    assert "Node ws1 is ready" in out
    ready_node.refresh_from_db()
    assert ready_node.sdscripts_version == COMMIT[:12]


@pytest.mark.django_db
def test_check_node_reports_problems_with_fixes(ready_node, home, settings):
    settings.LORASTUDIO_FAKE_GPUS = ""
    (home / "sd-scripts/library/train_util.py").unlink()
    make_base_model(name="gone", architecture="sdxl", checkpoint="nowhere/x.safetensors")
    out = StringIO()
    with pytest.raises(CommandError, match="2 check\\(s\\) failed: sd-scripts Python, GPUs"):
        call_command("check_node", "--name", "ws1", stdout=out)
    text = out.getvalue()
    assert "cannot import sd-scripts" in text
    assert "fix: install the NVIDIA driver" in text
    assert "[warn] model gone: missing checkpoint" in text


@pytest.mark.django_db
def test_check_node_needs_a_registered_node():
    with pytest.raises(CommandError, match="register_node"):
        run("check_node", "--name", "nowhere")


@pytest.mark.django_db
def test_register_node_sets_the_offline_trainer_settings(tmp_path):
    tokenizers = str(tmp_path / "tokenizers")
    run(
        "register_node", "--name", "gpu-a", "--tokenizer-cache-dir", tokenizers,
        "--trainer-env", "HF_HUB_OFFLINE=1", "--trainer-env", "HF_HOME=/srv/hf",
    )  # fmt: skip
    node = GPUNode.objects.get(name="gpu-a")
    assert node.tokenizer_cache_dir == tokenizers
    assert node.trainer_env == {"HF_HUB_OFFLINE": "1", "HF_HOME": "/srv/hf"}
    run("register_node", "--name", "gpu-a", "--trainer-env", "HF_HOME=")
    node.refresh_from_db()
    assert node.trainer_env == {"HF_HUB_OFFLINE": "1"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "pair, message",
    [
        ("SECRET_KEY=abc", "the web app's own setting"),
        ("LORASTUDIO_NODE=x", "the web app's own setting"),
        ("hf_home=/x", "a name is capitals"),
        ("NOEQUALS", "write KEY=VALUE"),
    ],
)
def test_register_node_refuses_a_bad_trainer_environment(pair, message):
    make_node(name="gpu-a", trainer_env={"HF_HUB_OFFLINE": "1"})
    with pytest.raises(CommandError, match=message):
        run("register_node", "--name", "gpu-a", "--trainer-env", pair)
    assert GPUNode.objects.get(name="gpu-a").trainer_env == {"HF_HUB_OFFLINE": "1"}


@pytest.mark.django_db
def test_register_node_sets_hf_home_to_a_hub_cache_it_finds(home):
    out = run("register_node", "--name", "ws1", "--detect", str(home), "--no-probe")
    hf_home = str(home / ".cache/huggingface")
    assert f"Hugging Face cache: {hf_home} (tokenizers: google/gemma-2-2b, " in out
    assert f"trainer_env HF_HOME: {hf_home}" in out
    # Never HF_HUB_OFFLINE: a node with internet still fetches tokenizers the cache lacks.
    assert GPUNode.objects.get(name="ws1").trainer_env == {"HF_HOME": hf_home}


@pytest.mark.django_db
def test_register_node_prefers_the_hub_cache_of_hf_home(home, tmp_path, monkeypatch):
    elsewhere = make_hub_cache(tmp_path / "hf", ["openai/clip-vit-large-patch14"])
    monkeypatch.setenv("HF_HOME", str(elsewhere))
    out = run("register_node", "--name", "ws1", "--detect", str(home), "--no-probe", "--dry-run")
    assert f"Hugging Face cache: {elsewhere} (tokenizers: openai/clip-vit-large-patch14)" in out
    assert f"trainer_env HF_HOME: {elsewhere}" in out
    assert not GPUNode.objects.exists()


@pytest.mark.django_db
def test_register_node_keeps_the_hf_home_staff_set(home):
    make_node(name="ws1", trainer_env={"HF_HOME": "/srv/hf", "HF_HUB_OFFLINE": "1"})
    out = run("register_node", "--name", "ws1", "--detect", str(home), "--no-probe")
    assert "trainer_env HF_HOME: /srv/hf kept (set by staff)" in out
    assert GPUNode.objects.get(name="ws1").trainer_env == {
        "HF_HOME": "/srv/hf",
        "HF_HUB_OFFLINE": "1",
    }


@pytest.mark.django_db
def test_a_hub_cache_without_sd_scripts_tokenizers_is_not_proposed(tmp_path):
    home = make_fake_home(tmp_path / "home", hub_cache=False)
    (home / ".cache/huggingface/hub/models--bert-base-uncased/snapshots/1").mkdir(parents=True)
    # A repository folder with no tokenizer file in any snapshot holds no tokenizer.
    (home / ".cache/huggingface/hub/models--openai--clip-vit-large-patch14").mkdir()
    out = run("register_node", "--name", "ws1", "--detect", str(home), "--no-probe")
    assert "Hugging Face cache: not found" in out
    assert GPUNode.objects.get(name="ws1").trainer_env == {}
