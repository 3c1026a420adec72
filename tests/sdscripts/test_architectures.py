"""The architecture registry: every entry is consistent with sd-scripts and with itself."""

import pytest

from sdscripts import architectures
from sdscripts.architectures import ARCHITECTURES, BLOCK_SWAP, FILE_ROLES, spec
from sdscripts.command import Subset, TrainJob, accepted_flags, build_command
from sdscripts.params import PARAMS, bounds, params_for, validate_params
from sdscripts.vram import estimate_vram, plan

SPECS = list(ARCHITECTURES.values())
GPU_SPECS = [s for s in SPECS if s.on_gpu]


def ids(specs):
    return [s.key for s in specs]


def job_for(arch, values=None, **files):
    model_files = {role: f"/m/{role}.safetensors" for role in spec(arch).files} | files
    return TrainJob(
        architecture=arch,
        model_files=model_files,
        subsets=(Subset(image_dir="/data/10_sks", num_repeats=10, class_tokens="sks"),),
        params=validate_params(arch, values or {}),
        work_dir="/w/run-1",
        output_dir="/w/run-1/output",
        output_name="lora-run1",
        logging_dir="/w/run-1/logs",
        python="/venv/bin/python",
        sdscripts_dir="/sd-scripts",
        sample_prompts=("a photo of sks",),
    )


@pytest.mark.parametrize("arch", SPECS, ids=ids(SPECS))
def test_every_entry_is_consistent(arch):
    assert accepted_flags(arch.script)  # a script we know the options of
    for role in (*arch.files, *arch.optional_files):
        assert role in FILE_ROLES
    assert not arch.files or arch.files[0] == "checkpoint"
    for name in (*arch.param_defaults, *arch.param_limits, *arch.param_choices):
        assert name in PARAMS, name
        assert PARAMS[name].applies_to(arch), f"{name} is set but does not apply to {arch.key}"
    assert (arch.max_blocks_to_swap > 0) == (BLOCK_SWAP in arch.features)
    # Its defaults are a valid run on their own, with a value for every knob it has.
    assert set(validate_params(arch.key, {})) == {p.name for p in params_for(arch.key)}


@pytest.mark.parametrize("arch", GPU_SPECS, ids=ids(GPU_SPECS))
def test_every_flag_of_every_architecture_exists_in_its_script(arch):
    built = build_command(job_for(arch.key, {"sample_every_n_epochs": 1}))
    accepted = accepted_flags(arch.script)
    assert built.argv[1] == f"/sd-scripts/{arch.script}"
    assert [a for a in built.argv if a.startswith("--") and a[2:] not in accepted] == []
    assert built.argv[built.argv.index("--network_module") + 1] == arch.network_module
    for role in arch.file_roles:
        if role.name in arch.files:
            assert (
                built.argv[built.argv.index(f"--{role.flag}") + 1] == f"/m/{role.name}.safetensors"
            )


@pytest.mark.parametrize("arch", GPU_SPECS, ids=ids(GPU_SPECS))
def test_each_knob_appears_where_its_feature_is(arch):
    names = {p.name for p in params_for(arch.key)}
    assert ("blocks_to_swap" in names) == (BLOCK_SWAP in arch.features)
    lo, hi, _ = (
        bounds(PARAMS["blocks_to_swap"], arch.key) if "blocks_to_swap" in names else (0, 0, 0)
    )
    assert hi == arch.max_blocks_to_swap


def test_chroma_trains_with_the_flux_script_without_clip_l_and_with_guidance_zero():
    argv = build_command(job_for("chroma", {"cache_text_encoder_outputs": True})).argv
    assert argv[1].endswith("/flux_train_network.py")
    assert argv[argv.index("--model_type") + 1] == "chroma"
    assert "--apply_t5_attn_mask" in argv
    assert argv[argv.index("--guidance_scale") + 1] == "0"
    assert argv[argv.index("--network_module") + 1] == "networks.lora_flux"
    assert "--clip_l" not in argv and "--ae" in argv and "--t5xxl" in argv
    assert "--cpu_offload_checkpointing" not in {f"--{p.name}" for p in params_for("chroma")}
    with pytest.raises(Exception, match="guidance_scale: must be at most 0"):
        validate_params("chroma", {"guidance_scale": 3.5})


def test_chroma_samples_with_guidance_zero_a_real_cfg_and_a_negative_prompt():
    prompts = build_command(job_for("chroma", {"sample_every_n_epochs": 1})).sample_prompts
    assert prompts == (
        "a photo of sks --w 1024 --h 1024 --s 20 --d 42 --g 0 --l 4 --n low quality, blurry\n"
    )


def test_lumina_uses_its_script_gemma2_and_the_flux_autoencoder():
    argv = build_command(job_for("lumina2")).argv
    assert argv[1].endswith("/lumina_train_network.py")
    assert argv[argv.index("--network_module") + 1] == "networks.lora_lumina"
    assert argv[argv.index("--gemma2") + 1] == "/m/gemma2.safetensors"
    assert argv[argv.index("--ae") + 1] == "/m/ae.safetensors"
    assert argv[argv.index("--timestep_sampling") + 1] == "nextdit_shift"
    assert "--clip_l" not in argv and "--t5xxl" not in argv
    # Buckets in multiples of 16 are fine for Lumina, not for the 32-step architectures.
    assert validate_params("lumina2", {"bucket_reso_steps": 48})["bucket_reso_steps"] == 48
    with pytest.raises(Exception, match="bucket_reso_steps: must be divisible by 32"):
        validate_params("chroma", {"bucket_reso_steps": 48})
    with pytest.raises(Exception, match="blocks_to_swap: must be at most 24"):
        validate_params("lumina2", {"blocks_to_swap": 25})


@pytest.mark.parametrize("arch", GPU_SPECS, ids=ids(GPU_SPECS))
def test_the_planner_can_make_every_architecture_fit_a_24_gb_gpu(arch):
    values = validate_params(arch.key, {"resolution": 1024})
    assert estimate_vram(arch.key, values).total_mib > 0
    assert plan(arch.key, values, 24576).fits


def test_the_registry_cannot_be_changed_by_a_caller():
    with pytest.raises(TypeError):
        spec("chroma").param_defaults["guidance_scale"] = 3.5
    with pytest.raises(architectures.UnknownArchitecture, match="use one of sd15"):
        spec("sd4")


@pytest.mark.parametrize("arch", SPECS, ids=ids(SPECS))
def test_every_sd_scripts_entry_says_how_its_tokenizers_load(arch):
    tokenizers = arch.tokenizers
    if not arch.on_gpu:
        assert tokenizers is None
        return
    assert tokenizers.module.startswith("library.strategy_")
    assert tokenizers.strategy.endswith("TokenizeStrategy")
    assert tokenizers.repos and all(r.count("/") == 1 for r in tokenizers.repos)
    assert tokenizers.cache_layout in ("saved", "hub")
    assert all(isinstance(a, (bool, int, str, type(None))) for a in tokenizers.args)
