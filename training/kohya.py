"""Build the sd-scripts (or demo trainer) argv, dataset TOML and sample-prompt text for a run.

Pure: plain values in, a `BuiltCommand` out; the caller writes the files and starts the process.
Every emitted flag is checked against the target script's accepted options.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from training.params import DIT, FLUX, PARAMS, SCRIPTS, SD3
from training.sdscripts_flags import ACCEPTED_FLAGS

NETWORK_MODULES = {
    "sd15": "networks.lora",
    "sdxl": "networks.lora",
    "sd35_medium": "networks.lora_sd3",
    "sd35_large": "networks.lora_sd3",
    "flux1_dev": "networks.lora_flux",
    "flux1_schnell": "networks.lora_flux",
}

DATASET_TOML = "dataset.toml"
SAMPLE_PROMPTS_TXT = "sample_prompts.txt"

# Knobs that live in the dataset TOML rather than on the command line.
DATASET_KEYS = ("enable_bucket", "min_bucket_reso", "max_bucket_reso", "bucket_reso_steps")
SUBSET_KEYS = (
    "shuffle_caption",
    "keep_tokens",
    "flip_aug",
    "color_aug",
    "random_crop",
    "caption_dropout_rate",
)
# Knobs consumed here in a special way (not emitted as `--name value`).
SPECIAL_KEYS = {"resolution", "train_batch_size", "sample_every_n_epochs", "blocks_to_swap"}

# sd-scripts' low-VRAM Adafactor recipe (SDSCRIPTS.md).
ADAFACTOR_ARGS = ("relative_step=False", "scale_parameter=False", "warmup_init=False")


@dataclass(frozen=True)
class ModelFiles:
    """Absolute paths of a base model's files (the ones its architecture needs)."""

    checkpoint: str
    clip_l: str = ""
    clip_g: str = ""
    t5xxl: str = ""
    ae: str = ""
    vae: str = ""


@dataclass(frozen=True)
class Subset:
    """One image folder of the dataset (training or regularisation)."""

    image_dir: str
    num_repeats: int
    class_tokens: str
    caption_extension: str = ".txt"
    is_reg: bool = False


@dataclass(frozen=True)
class TrainJob:
    """Everything needed to build one trainer command."""

    architecture: str
    model: ModelFiles
    subsets: tuple[Subset, ...]
    params: dict
    work_dir: str
    output_dir: str
    output_name: str
    logging_dir: str
    python: str
    sdscripts_dir: str
    sample_prompts: tuple[str, ...] = ()
    extra_flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuiltCommand:
    """The argv to run and the texts of the files it references."""

    script: str
    argv: list[str]
    cwd: str
    dataset_config: str
    sample_prompts: str
    env: dict[str, str] = field(default_factory=dict)


def required_model_files(architecture: str) -> tuple[str, ...]:
    """Names of the ModelFiles fields an architecture needs."""
    if architecture in SD3:
        return ("checkpoint", "clip_l", "clip_g", "t5xxl")
    if architecture in FLUX:
        return ("checkpoint", "clip_l", "t5xxl", "ae")
    return ("checkpoint",)


def format_value(value: object) -> str:
    """An option value as sd-scripts' argparse expects it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, ".10g")
    return str(value)


def _toml_str(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if any(c in text for c in ".en") else text + ".0"
    return _toml_str(str(value))


def build_dataset_toml(subsets: tuple[Subset, ...], params: dict) -> str:
    """The dataset config TOML (sd-scripts' strict schema: ints stay ints)."""
    lines = ["[general]", "", "[[datasets]]"]
    lines.append(f"resolution = {int(params['resolution'])}")
    lines.append(f"batch_size = {int(params['train_batch_size'])}")
    for key in DATASET_KEYS:
        if key in params and params[key] is not None:
            lines.append(f"{key} = {_toml_value(params[key])}")
    for subset in subsets:
        lines += ["", "  [[datasets.subsets]]"]
        lines.append(f"  image_dir = {_toml_str(subset.image_dir)}")
        lines.append(f"  num_repeats = {int(subset.num_repeats)}")
        lines.append(f"  class_tokens = {_toml_str(subset.class_tokens)}")
        lines.append(f"  caption_extension = {_toml_str(subset.caption_extension)}")
        lines.append(f"  is_reg = {_toml_value(bool(subset.is_reg))}")
        for key in SUBSET_KEYS:
            if key in params and params[key] is not None:
                value = params[key]
                if key == "caption_dropout_rate":
                    value = float(value)
                lines.append(f"  {key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _join(directory: str, name: str) -> str:
    return directory.rstrip("/") + "/" + name


def _demo_argv(job: TrainJob, toml_path: str, prompts_path: str) -> list[str]:
    p = job.params
    argv = [job.python, "-m", "training.demo_trainer"]
    argv += ["--dataset_config", toml_path, "--output_dir", job.output_dir]
    argv += ["--output_name", job.output_name]
    for key in ("max_train_epochs", "network_dim", "network_alpha", "learning_rate"):
        argv += [f"--{key}", format_value(p[key])]
    argv += ["--resolution", str(int(p["resolution"]))]
    argv += ["--train_batch_size", format_value(p["train_batch_size"])]
    argv += ["--save_every_n_epochs", format_value(p["save_every_n_epochs"])]
    if job.sample_prompts and p.get("sample_every_n_epochs"):
        argv += ["--sample_prompts", prompts_path]
        argv += ["--sample_every_n_epochs", format_value(p["sample_every_n_epochs"])]
    argv += ["--seed", format_value(p["seed"])]
    return argv


def _model_flags(arch: str, model: ModelFiles) -> list[str]:
    missing = [name for name in required_model_files(arch) if not getattr(model, name)]
    if missing:
        raise ValueError(f"{arch} needs these model files: {', '.join(missing)}")
    flags = ["--pretrained_model_name_or_path", model.checkpoint]
    if arch in SD3:
        flags += ["--clip_l", model.clip_l, "--clip_g", model.clip_g, "--t5xxl", model.t5xxl]
    elif arch in FLUX:
        flags += ["--clip_l", model.clip_l, "--t5xxl", model.t5xxl, "--ae", model.ae]
    if model.vae and arch not in FLUX:
        flags += ["--vae", model.vae]
    return flags


def _param_flags(arch: str, params: dict) -> list[str]:
    flags: list[str] = []
    for key, value in params.items():
        if key in SPECIAL_KEYS or key in DATASET_KEYS or key in SUBSET_KEYS:
            continue
        if key not in PARAMS or value is None:
            continue
        if PARAMS[key].kind == "bool":
            if value:
                flags.append(f"--{key}")
            continue
        flags += [f"--{key}", format_value(value)]
        if key == "optimizer_type" and value == "Adafactor":
            flags += ["--optimizer_args", *ADAFACTOR_ARGS]
    if arch in DIT and params.get("blocks_to_swap"):
        flags += ["--blocks_to_swap", format_value(params["blocks_to_swap"])]
    return flags


def check_flags(script: str, argv: list[str]) -> None:
    """Raise ValueError if argv holds an option the target script does not accept."""
    accepted = ACCEPTED_FLAGS[script]
    unknown = [a for a in argv if a.startswith("--") and a[2:].split("=")[0] not in accepted]
    if unknown:
        raise ValueError(f"{script} does not accept: {', '.join(unknown)}")


def build_command(job: TrainJob) -> BuiltCommand:
    """Build the complete argv, dataset TOML and sample-prompt text for a job."""
    arch = job.architecture
    if arch not in SCRIPTS:
        raise ValueError(f"unknown architecture {arch!r}")
    if not job.subsets:
        raise ValueError("a run needs at least one image folder")
    script = SCRIPTS[arch]
    toml_path = _join(job.work_dir, DATASET_TOML)
    prompts_path = _join(job.work_dir, SAMPLE_PROMPTS_TXT)
    prompts_text = "".join(line.replace("\n", " ").strip() + "\n" for line in job.sample_prompts)
    dataset = build_dataset_toml(job.subsets, job.params)
    env = {"PYTHONUNBUFFERED": "1"}

    if arch == "demo":
        argv = _demo_argv(job, toml_path, prompts_path)
        check_flags(script, argv)
        return BuiltCommand(script, argv, "", dataset, prompts_text, env)

    p = job.params
    flags = ["--console_log_simple", "--dataset_config", toml_path]
    flags += _model_flags(arch, job.model)
    flags += ["--network_module", NETWORK_MODULES[arch]]
    flags += ["--output_dir", job.output_dir, "--output_name", job.output_name]
    flags += ["--save_model_as", "safetensors", "--logging_dir", job.logging_dir]
    flags += ["--max_data_loader_n_workers", "2"]
    if arch in ("sd15", "sdxl"):
        flags.append("--sdpa")
    flags += _param_flags(arch, p)
    if job.sample_prompts and p.get("sample_every_n_epochs"):
        flags += ["--sample_prompts", prompts_path]
        flags += ["--sample_every_n_epochs", format_value(p["sample_every_n_epochs"])]
    flags += list(job.extra_flags)
    script_path = _join(job.sdscripts_dir, script)
    argv = [job.python, script_path, *flags]
    check_flags(script, flags)
    return BuiltCommand(script, argv, job.sdscripts_dir, dataset, prompts_text, env)
