"""`manage.py train` (dry run and submit) and `register_base_model`."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sdscripts.flags import ACCEPTED_FLAGS
from sdscripts.params import validate_params
from tests.factories import make_dataset, make_gpu, make_node, make_trainable_dataset
from training.models import BaseModel, Preset, TrainingRun


def register(name, arch, **files):
    args = ["register_base_model", "--name", name, "--architecture", arch]
    for key, value in files.items():
        args += [f"--{key.replace('_', '-')}", value]
    call_command(*args, stdout=StringIO())
    return BaseModel.objects.get(name=name)


def dry_run(*args):
    out = StringIO()
    call_command("train", *args, "--dry-run", "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def sd35l(db):
    return register(
        "SD3.5 Large", "sd35_large", checkpoint="/m/l.safetensors", clip_l="/m/cl.safetensors",
        clip_g="/m/cg.safetensors", t5xxl="/m/t5.safetensors",
    )  # fmt: skip


@pytest.fixture
def flux(db):
    return register(
        "FLUX dev", "flux1_dev", checkpoint="/m/f.safetensors", clip_l="/m/cl.safetensors",
        t5xxl="/m/t5.safetensors", ae="/m/ae.safetensors",
    )  # fmt: skip


def test_sd35_large_1024_fits_32gb_with_savers(student, sd35l):
    dataset = make_dataset(owner=student, name="dogs")
    out = dry_run(
        "--dataset", "dogs", "--base-model", "SD3.5 Large",
        "--preset", "SD 3.5 Large, quality 1024", "--set", "train_batch_size=1",
        "--gpu-mib", "32768",
    )  # fmt: skip
    assert out["script"] == "sd3_train_network.py"
    assert out["vram"]["fits"] is True
    assert out["vram"]["estimate_mib"] < out["vram"]["budget_mib"] == 32768
    assert out["vram"]["savers"] and all(s["reason"] for s in out["vram"]["savers"])
    assert "--cache_text_encoder_outputs" in out["argv"]
    assert "networks.lora_sd3" in out["argv"]
    # "--metadata_title=…" carries its value in the same argument.
    flags = [a[2:].split("=")[0] for a in out["argv"] if a[:2] == "--"]
    assert all(f in ACCEPTED_FLAGS["sd3_train_network.py"] for f in flags)
    assert "resolution = 1024" in out["dataset_config"]
    assert f"num_repeats = {dataset.repeats}" in out["dataset_config"]
    assert TrainingRun.objects.count() == 0


def test_flux_on_8gb_plans_block_swap_or_says_it_does_not_fit(student, flux):
    make_dataset(owner=student, name="cats")
    out = dry_run("--dataset", "cats", "--base-model", "FLUX dev", "--gpu-mib", "8192")
    names = [s["name"] for s in out["vram"]["savers"]]
    if out["vram"]["fits"]:
        assert "blocks_to_swap" in names
        assert "--blocks_to_swap" in out["argv"]
        assert out["vram"]["estimate_mib"] < 8192
    else:
        assert "does not fit" in out["vram"]["message"].lower()
    assert TrainingRun.objects.count() == 0


def test_no_plan_estimates_the_given_configuration(student, sd35l):
    make_dataset(owner=student, name="dogs")
    out = dry_run(
        "--dataset", "dogs", "--base-model", "SD3.5 Large", "--set", "resolution=1024",
        "--gpu-mib", "32768", "--no-plan",
    )  # fmt: skip
    assert out["vram"]["savers"] == []
    assert out["vram"]["fits"] is False


def test_lab_gpus_are_listed_and_used_as_the_budget(student, sd35l):
    make_dataset(owner=student, name="dogs")
    node = make_node(name="gpu-a")
    make_gpu(node=node, total_mib=32768)
    make_gpu(node=node, total_mib=4096)
    out = dry_run("--dataset", "dogs", "--base-model", "SD3.5 Large", "--set", "resolution=1024")
    assert out["vram"]["budget_mib"] == 32768
    assert [(g["node"], g["total_mib"], g["fits"]) for g in out["gpus"]] == [
        ("gpu-a", 32768, True),
        ("gpu-a", 4096, False),
    ]


@pytest.mark.parametrize(
    "args, field",
    [
        (["--set", "blocks_to_swap=99"], "blocks_to_swap"),
        (["--set", "bogus=1"], "bogus"),
        (["--set", "resolution=big"], "resolution"),
        (["--preset", "SDXL, 1024"], "preset"),
        (["--preset", "no such preset"], "preset"),
    ],
)
def test_bad_values_raise_command_error_naming_the_field(student, sd35l, args, field):
    make_dataset(owner=student, name="dogs")
    with pytest.raises(CommandError, match=field):
        dry_run("--dataset", "dogs", "--base-model", "SD3.5 Large", *args)
    assert TrainingRun.objects.count() == 0


def test_unknown_dataset_and_model_are_named(student, sd35l):
    with pytest.raises(CommandError, match="dataset"):
        dry_run("--dataset", "nope", "--base-model", "SD3.5 Large")
    make_dataset(owner=student, name="dogs")
    with pytest.raises(CommandError, match="base-model"):
        dry_run("--dataset", "dogs", "--base-model", "nope")


def test_register_base_model_refuses_missing_encoders(db):
    with pytest.raises(CommandError, match="t5xxl"):
        register("broken", "flux1_dev", checkpoint="/m/f.safetensors", clip_l="/m/c.safetensors")
    assert not BaseModel.objects.filter(name="broken").exists()


def test_presets_exist_and_validate(db):
    names = set(Preset.objects.values_list("name", flat=True))
    assert {"SD 3.5 Medium, 768", "SD 3.5 Large, quality 1024", "Demo (CPU)"} <= names
    for preset in Preset.objects.all():
        validate_params(preset.architecture, {}, base=preset.values, rules=preset.student_rules)


def test_seed_command_comes_out_of_the_sd35_medium_preset(student):
    register(
        "SD3.5 Medium", "sd35_medium", checkpoint="/m/m.safetensors", clip_l="/m/cl.safetensors",
        clip_g="/m/cg.safetensors", t5xxl="/m/t5.safetensors",
    )  # fmt: skip
    make_dataset(owner=student, name="dogs")
    out = dry_run(
        "--dataset", "dogs", "--base-model", "SD3.5 Medium", "--preset", "SD 3.5 Medium, 768",
        "--gpu-mib", "81920",
    )  # fmt: skip
    argv = out["argv"]
    expected = {
        "--network_module": "networks.lora_sd3", "--max_train_epochs": "10",
        "--network_dim": "32", "--network_alpha": "16", "--learning_rate": "0.0001",
        "--optimizer_type": "AdamW8bit", "--mixed_precision": "bf16",
        "--clip_l": "/m/cl.safetensors", "--clip_g": "/m/cg.safetensors",
        "--t5xxl": "/m/t5.safetensors",
    }  # fmt: skip
    for flag, value in expected.items():
        assert argv[argv.index(flag) + 1] == value
    assert "--cache_latents" in argv
    assert out["vram"]["savers"] == []
    assert "resolution = 768" in out["dataset_config"]
    assert "batch_size = 1" in out["dataset_config"]


def submit(*args):
    out = StringIO()
    call_command("train", *args, stdout=out)
    return out.getvalue()


def test_submit_queues_a_run(student):
    make_trainable_dataset(owner=student, name="dogs")
    BaseModel.objects.create(name="demo", architecture="demo")
    assert "is queued" in submit("--dataset", "dogs", "--base-model", "demo")
    assert TrainingRun.objects.get().status == "queued"


def test_no_evaluate_turns_off_the_evaluation_after_training(student):
    make_trainable_dataset(owner=student, name="dogs")
    BaseModel.objects.create(name="demo", architecture="demo")
    submit("--dataset", "dogs", "--base-model", "demo")
    submit("--dataset", "dogs", "--base-model", "demo", "--no-evaluate")
    assert list(TrainingRun.objects.order_by("pk").values_list("evaluate_after", flat=True)) == [
        True,
        False,
    ]


def test_disabled_base_model_is_a_command_error_creating_nothing(student):
    make_dataset(owner=student, name="dogs")
    BaseModel.objects.create(name="old demo", architecture="demo", enabled=False)
    with pytest.raises(CommandError, match=r"^Base model old demo is disabled\.$"):
        submit("--dataset", "dogs", "--base-model", "old demo")
    assert TrainingRun.objects.count() == 0


def test_another_students_private_dataset_is_a_command_error(student, other_student):
    make_dataset(owner=student, name="dogs")
    BaseModel.objects.create(name="demo", architecture="demo")
    with pytest.raises(CommandError, match="Dataset dogs is not available to bob"):
        submit("--dataset", "dogs", "--base-model", "demo", "--owner", "bob")
    assert TrainingRun.objects.count() == 0


def test_run_no_gpu_of_the_lab_can_hold_is_a_command_error(student, sd35l):
    make_dataset(owner=student, name="dogs")
    make_gpu(node=make_node(name="small"), total_mib=2048)
    with pytest.raises(CommandError, match="No GPU of the lab can hold this run"):
        submit("--dataset", "dogs", "--base-model", "SD3.5 Large", "--set", "resolution=1024")
    assert TrainingRun.objects.count() == 0


@pytest.mark.parametrize(
    "arch, preset, files, script",
    [
        (
            "chroma", "Chroma, 1024",
            {"checkpoint": "/m/chroma.safetensors", "t5xxl": "/m/t5.safetensors",
             "ae": "/m/ae.safetensors"},
            "flux_train_network.py",
        ),
        (
            "lumina2", "Lumina-Image 2.0, 1024",
            {"checkpoint": "/m/lumina.safetensors", "gemma2": "/m/gemma2.safetensors",
             "ae": "/m/ae.safetensors"},
            "lumina_train_network.py",
        ),
    ],
)  # fmt: skip
def test_chroma_and_lumina_dry_runs_use_only_their_scripts_flags(
    staff, arch, preset, files, script
):
    register("new arch", arch, **files)
    make_dataset(owner=staff, name="dogs")
    out = dry_run("--dataset", "dogs", "--base-model", "new arch", "--preset", preset)
    assert out["script"] == script
    flags = [a[2:].split("=")[0] for a in out["argv"] if a.startswith("--")]
    assert [f for f in flags if f not in ACCEPTED_FLAGS[script]] == []
    for role, path in files.items():
        flag = "pretrained_model_name_or_path" if role == "checkpoint" else role
        assert out["argv"][out["argv"].index(f"--{flag}") + 1] == path
    assert out["vram"]["fits"] is True


def test_register_base_model_takes_gemma2_for_lumina(db):
    model = register(
        "Lumina", "lumina2", checkpoint="lumina.safetensors", gemma2="gemma_2_2b.safetensors",
        ae="ae.safetensors",
    )  # fmt: skip
    assert model.gemma2 == "gemma_2_2b.safetensors"
    with pytest.raises(CommandError, match="gemma2: This architecture needs this file"):
        register("Lumina 2", "lumina2", checkpoint="l.safetensors", ae="ae.safetensors")


@pytest.mark.parametrize(
    "flag",
    [
        "--huber_scale=1.0", "--lr_decay_steps=100", "--lr_scheduler_min_lr_ratio=0.1",
        "--lr_scheduler_timescale=100", "--metadata_trigger_phrase=sks",
        "--metadata_usage_hint=portraits",
    ],
)  # fmt: skip
def test_staff_extra_flags_reach_the_command_including_options_the_old_list_refused(staff, flag):
    register("SD15", "sd15", checkpoint="/m/sd15.safetensors")
    make_trainable_dataset(owner=staff, name="dogs")
    args = ("--dataset", "dogs", "--base-model", "SD15", f"--extra-flag={flag}")
    out = dry_run(*args)
    assert flag in out["argv"] and out["verdict"] == "ok"
    submit(*args)
    assert TrainingRun.objects.get().extra_flags == [flag]


def test_flux_only_options_pass_for_flux_and_not_elsewhere(staff, flux):
    make_trainable_dataset(owner=staff, name="dogs")
    register("SD15", "sd15", checkpoint="/m/sd15.safetensors")
    out = dry_run("--dataset", "dogs", "--base-model", "FLUX dev", "--extra-flag=--split_mode")
    assert "--split_mode" in out["argv"]
    with pytest.raises(CommandError, match="train_network.py has no option --split_mode"):
        dry_run("--dataset", "dogs", "--base-model", "SD15", "--extra-flag=--split_mode")


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--output_dir=/tmp", "is set by LoRA Studio"),
        ("--bogus_option=1", "has no option --bogus_option"),
    ],
)
def test_bad_extra_flags_are_refused_and_create_nothing(staff, flag, message):
    register("SD15", "sd15", checkpoint="/m/sd15.safetensors")
    make_trainable_dataset(owner=staff, name="dogs")
    with pytest.raises(CommandError, match=message):
        submit("--dataset", "dogs", "--base-model", "SD15", f"--extra-flag={flag}")
    assert TrainingRun.objects.count() == 0


def test_students_cannot_pass_extra_flags(student):
    register("SD15", "sd15", checkpoint="/m/sd15.safetensors")
    make_trainable_dataset(owner=student, name="dogs")
    with pytest.raises(CommandError, match="Only staff may pass extra sd-scripts flags"):
        dry_run("--dataset", "dogs", "--base-model", "SD15", "--extra-flag=--huber_scale=1")
    assert TrainingRun.objects.count() == 0
