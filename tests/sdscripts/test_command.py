"""The sd-scripts command builder: argv, dataset TOML and sample prompts for every architecture."""

import tomllib

import pytest

from sdscripts.command import (
    BuiltCommand,
    Subset,
    TrainJob,
    accepted_flags,
    build_command,
    validate_extra_flags,
)
from sdscripts.params import ParamError, validate_params

MODELS = {
    "sd15": dict(checkpoint="/m/sd15.safetensors"),
    "sdxl": dict(checkpoint="/m/sdxl.safetensors"),
    "sd35_medium": dict(
        checkpoint="/m/sd35m.safetensors",
        clip_l="/m/clip_l.safetensors",
        clip_g="/m/clip_g.safetensors",
        t5xxl="/m/t5xxl.safetensors",
    ),
    "sd35_large": dict(
        checkpoint="/m/sd35l.safetensors",
        clip_l="/m/clip_l.safetensors",
        clip_g="/m/clip_g.safetensors",
        t5xxl="/m/t5xxl.safetensors",
    ),
    "flux1_dev": dict(
        checkpoint="/m/flux1-dev.safetensors",
        clip_l="/m/clip_l.safetensors",
        t5xxl="/m/t5xxl.safetensors",
        ae="/m/ae.safetensors",
    ),
    "flux1_schnell": dict(
        checkpoint="/m/flux1-schnell.safetensors",
        clip_l="/m/clip_l.safetensors",
        t5xxl="/m/t5xxl.safetensors",
        ae="/m/ae.safetensors",
    ),
    "demo": dict(checkpoint=""),
}

SUBSETS = (
    Subset(image_dir='/data/run 7/10_sks "dog"', num_repeats=10, class_tokens="sks dog"),
    Subset(image_dir="/data/reg", num_repeats=1, class_tokens="dog", is_reg=True),
)


def make_job(arch, values=None, **kw):
    params = validate_params(arch, values or {})
    defaults = dict(
        architecture=arch,
        model_files=MODELS[arch],
        subsets=SUBSETS,
        params=params,
        work_dir="/work/run-7",
        output_dir="/work/run-7/output",
        output_name="run-7",
        logging_dir="/work/run-7/logs",
        python="/opt/sd-scripts/venv/bin/python",
        sdscripts_dir="/opt/sd-scripts",
        sample_prompts=("a photo of sks dog",),
    )
    defaults.update(kw)
    return TrainJob(**defaults)


SD3_ENC = ["--clip_l", "--clip_g", "--t5xxl"]
FLUX_ENC = ["--clip_l", "--t5xxl", "--ae"]


def flag_value(argv, flag):
    return argv[argv.index(flag) + 1]


@pytest.mark.parametrize(
    "arch, script, module, encoder_flags",
    [
        ("sd15", "train_network.py", "networks.lora", []),
        ("sdxl", "sdxl_train_network.py", "networks.lora", []),
        ("sd35_medium", "sd3_train_network.py", "networks.lora_sd3", SD3_ENC),
        ("sd35_large", "sd3_train_network.py", "networks.lora_sd3", SD3_ENC),
        ("flux1_dev", "flux_train_network.py", "networks.lora_flux", FLUX_ENC),
        ("flux1_schnell", "flux_train_network.py", "networks.lora_flux", FLUX_ENC),
    ],
)  # fmt: skip
def test_script_module_and_encoders_per_architecture(arch, script, module, encoder_flags):
    built = build_command(make_job(arch))
    assert built.script == script
    assert built.argv[0] == "/opt/sd-scripts/venv/bin/python"
    assert built.argv[1] == f"/opt/sd-scripts/{script}"
    assert built.cwd == "/opt/sd-scripts"
    assert flag_value(built.argv, "--network_module") == module
    for flag in encoder_flags:
        assert flag_value(built.argv, flag).startswith("/m/")
    for flag in {"--clip_l", "--clip_g", "--t5xxl", "--ae"} - set(encoder_flags):
        assert flag not in built.argv
    assert "--console_log_simple" in built.argv
    assert built.env["PYTHONUNBUFFERED"] == "1"


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_every_emitted_flag_is_accepted_by_the_target_script(arch):
    values = {"blocks_to_swap": 4} if arch in ("sd35_large", "flux1_dev") else {}
    built = build_command(make_job(arch, values))
    accepted = accepted_flags(built.script)
    flags = [a[2:] for a in built.argv if a.startswith("--")]
    assert flags
    assert [f for f in flags if f not in accepted] == []


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_dataset_toml_parses_with_the_types_sd_scripts_requires(arch):
    values = {} if arch == "demo" else {"caption_dropout_rate": 0.1, "flip_aug": True}
    built = build_command(make_job(arch, values))
    config = tomllib.loads(built.dataset_config)
    dataset = config["datasets"][0]
    assert type(dataset["resolution"]) is int
    assert type(dataset["batch_size"]) is int
    first, reg = dataset["subsets"]
    assert first["image_dir"] == '/data/run 7/10_sks "dog"'
    assert type(first["num_repeats"]) is int and first["num_repeats"] == 10
    assert first["class_tokens"] == "sks dog"
    assert first["caption_extension"] == ".txt"
    assert first["is_reg"] is False and reg["is_reg"] is True
    if arch != "demo":
        assert type(first["caption_dropout_rate"]) is float
        assert first["flip_aug"] is True
    assert flag_value(built.argv, "--dataset_config") == "/work/run-7/dataset.toml"


def test_seed_sd35_medium_command_flag_for_flag():
    seed_values = {
        "resolution": 768,
        "train_batch_size": 1,
        "max_train_epochs": 10,
        "network_dim": 32,
        "network_alpha": 16,
        "learning_rate": "1e-4",
        "optimizer_type": "AdamW8bit",
        "mixed_precision": "bf16",
        "cache_latents": True,
        "sample_every_n_epochs": 0,
    }
    built = build_command(make_job("sd35_medium", seed_values, sample_prompts=()))
    assert built.argv == [
        "/opt/sd-scripts/venv/bin/python",
        "/opt/sd-scripts/sd3_train_network.py",
        "--console_log_simple",
        "--dataset_config", "/work/run-7/dataset.toml",
        "--pretrained_model_name_or_path", "/m/sd35m.safetensors",
        "--clip_l", "/m/clip_l.safetensors",
        "--clip_g", "/m/clip_g.safetensors",
        "--t5xxl", "/m/t5xxl.safetensors",
        "--network_module", "networks.lora_sd3",
        "--output_dir", "/work/run-7/output",
        "--output_name", "run-7",
        "--save_model_as", "safetensors",
        "--logging_dir", "/work/run-7/logs",
        "--max_data_loader_n_workers", "2",
        "--max_train_epochs", "10",
        "--network_dim", "32",
        "--network_alpha", "16",
        "--learning_rate", "0.0001",
        "--optimizer_type", "AdamW8bit",
        "--lr_scheduler", "constant",
        "--lr_warmup_steps", "0",
        "--mixed_precision", "bf16",
        "--save_precision", "bf16",
        "--seed", "42",
        "--save_every_n_epochs", "1",
        "--cache_latents",
        "--max_grad_norm", "1",
    ]  # fmt: skip
    dataset = tomllib.loads(built.dataset_config)["datasets"][0]
    assert dataset["resolution"] == 768 and dataset["batch_size"] == 1
    assert built.sample_prompts == ""


def test_sample_prompts_written_and_referenced_when_given():
    built = build_command(make_job("sdxl", {"sample_every_n_epochs": 2}))
    # Size, steps and seed are the run's own: SDXL's default 1024 px, 20 steps, seed 42.
    assert built.sample_prompts == "a photo of sks dog --w 1024 --h 1024 --s 20 --d 42\n"
    assert flag_value(built.argv, "--sample_prompts") == "/work/run-7/sample_prompts.txt"
    assert flag_value(built.argv, "--sample_every_n_epochs") == "2"
    assert "--sdpa" in built.argv


def test_demo_emits_exactly_its_flags():
    metadata = {"title": "t", "author": "alice", "description": "d"}
    values = {"resolution": 64, "max_train_epochs": 4, "save_state": True}
    job = make_job(
        "demo", values, metadata=metadata, resume_dir="/work/run-7/resume/s", resume_epoch=2
    )
    built = build_command(job)
    assert built.argv[:3] == ["/opt/sd-scripts/venv/bin/python", "-m", "demo_trainer"]
    flags = {a.split("=")[0] for a in built.argv if a.startswith("--")}
    assert flags == {f"--{f}" for f in accepted_flags("demo_trainer")}
    assert flag_value(built.argv, "--resolution") == "64"
    assert flag_value(built.argv, "--max_train_epochs") == "4"


def test_savers_and_staff_flags_reach_the_argv():
    values = {
        "fp8_base": True,
        "blocks_to_swap": 16,
        "gradient_checkpointing": True,
        "cache_text_encoder_outputs": True,
        "save_state": True,
    }
    built = build_command(make_job("flux1_dev", values, extra_flags=("--min_snr_gamma", "5")))
    for flag in ("--fp8_base", "--gradient_checkpointing", "--cache_text_encoder_outputs"):
        assert flag in built.argv
    assert "--save_state" in built.argv
    assert flag_value(built.argv, "--blocks_to_swap") == "16"
    assert flag_value(built.argv, "--guidance_scale") == "1"
    assert built.argv[-2:] == ["--min_snr_gamma", "5"]


def test_adafactor_gets_its_low_vram_arguments():
    built = build_command(make_job("sdxl", {"optimizer_type": "adafactor"}))
    i = built.argv.index("--optimizer_args")
    assert built.argv[i + 1 : i + 4] == [
        "relative_step=False",
        "scale_parameter=False",
        "warmup_init=False",
    ]


def test_missing_encoder_file_is_refused():
    job = make_job("sd35_large", model_files=dict(checkpoint="/m/x.safetensors"))
    with pytest.raises(ValueError, match="clip_l, clip_g, t5xxl"):
        build_command(job)


def test_unknown_extra_flag_cannot_slip_through():
    with pytest.raises(ValueError, match="--not_a_flag"):
        build_command(make_job("sd15", extra_flags=("--not_a_flag",)))


def test_result_is_a_built_command_with_list_argv():
    built = build_command(make_job("sd15"))
    assert isinstance(built, BuiltCommand)
    assert isinstance(built.argv, list) and all(isinstance(a, str) for a in built.argv)


def test_steps_replace_epochs_and_sampling_every_n_steps_is_emitted():
    built = build_command(
        make_job("sd15", {"max_train_steps": 500, "sample_every_n_steps": 100,
                          "sample_every_n_epochs": 0, "save_every_n_steps": 50})
    )  # fmt: skip
    assert flag_value(built.argv, "--max_train_steps") == "500"
    assert "--max_train_epochs" not in built.argv  # sd-scripts would let epochs win
    assert flag_value(built.argv, "--sample_every_n_steps") == "100"
    assert flag_value(built.argv, "--save_every_n_steps") == "50"
    assert "--sample_every_n_epochs" not in built.argv
    assert flag_value(built.argv, "--sample_prompts") == "/work/run-7/sample_prompts.txt"


@pytest.mark.parametrize("arch", ["sd15", "flux1_dev", "demo"])
def test_the_loras_own_description_is_one_argument_per_option(arch):
    metadata = {"title": "--seed 1\nsecond\x00 line", "author": "alice", "description": ""}
    built = build_command(make_job(arch, metadata=metadata))
    assert "--metadata_title=--seed 1 second line" in built.argv
    assert "--metadata_author=alice" in built.argv
    assert not any(a.startswith("--metadata_description") for a in built.argv)


@pytest.mark.parametrize("arch", ["sd15", "sdxl", "flux1_dev", "demo"])
def test_a_resumed_job_continues_from_its_state_at_the_next_epoch(arch):
    job = make_job(arch, {"save_state": True}, resume_dir="/work/run-8/resume/a-000003-state",
                   resume_epoch=3)  # fmt: skip
    argv = build_command(job).argv
    assert flag_value(argv, "--resume") == "/work/run-8/resume/a-000003-state"
    # The epoch is given: a state saved by a resumed sd-scripts run counts too few steps.
    assert flag_value(argv, "--initial_epoch") == "4"
    assert "--save_state" in argv
    assert "--resume" not in build_command(make_job(arch)).argv


@pytest.mark.parametrize("flag", ["--resume", "--initial_epoch", "--skip_until_initial_step"])
def test_staff_extra_flags_cannot_resume(flag):
    with pytest.raises(ParamError) as caught:
        validate_extra_flags("sdxl", [flag, "1"])
    assert "set by LoRA Studio" in caught.value.errors[flag]
