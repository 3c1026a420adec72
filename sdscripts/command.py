"""Build the trainer's argv, dataset TOML and sample-prompt text for a run.

Pure: plain values in, a `BuiltCommand` out; the caller writes the files and starts the process.
Every emitted flag is checked against the target script's accepted options (sdscripts.flags),
and staff extra flags against the same list.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from sdscripts.architectures import FILE_ROLES, ArchSpec, spec
from sdscripts.flags import ACCEPTED_FLAGS
from sdscripts.params import PARAMS, ParamError
from sdscripts.prompts import prompt_file_text
from sdscripts.rules import samples_during_training

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
# Knobs consumed here in a special way (not emitted as `--name value`); a run's
# num_repeats and class_tokens are its training subset's (training.planning builds it).
SPECIAL_KEYS = {
    "num_repeats",
    "class_tokens",
    "resolution",
    "train_batch_size",
    "sample_every_n_epochs",
    "sample_every_n_steps",
    "sample_steps",
}

# sd-scripts' low-VRAM Adafactor recipe (docs/sd-scripts.md).
ADAFACTOR_ARGS = ("relative_step=False", "scale_parameter=False", "warmup_init=False")

# The LoRA's own description (sd-scripts writes them as modelspec.title/author/description),
# from TrainJob.metadata; the demo trainer takes the same options.
METADATA_FLAGS = ("metadata_title", "metadata_author", "metadata_description")

# The demo trainer's own options (`python -m demo_trainer`; its parser is the reference).
DEMO_FLAGS = frozenset(
    {
        "dataset_config", "output_dir", "output_name", "max_train_epochs", "network_dim",
        "network_alpha", "learning_rate", "resolution", "train_batch_size",
        "save_every_n_epochs", "sample_prompts", "sample_every_n_epochs", "seed",
        "save_state", "resume", "initial_epoch", *METADATA_FLAGS,
    }
)  # fmt: skip
# Resuming: set from the run's saved state (TrainJob.resume_dir), never by extra flags.
RESUME_FLAGS = ("resume", "initial_epoch", "initial_step", "skip_until_initial_step")

# Flags the builder sets itself; staff extra flags may not override them.
MANAGED_FLAGS = frozenset(
    {
        "dataset_config", "output_dir", "output_name", "logging_dir", "network_module",
        "sample_prompts", "console_log_simple", "config_file", "output_config",
        "train_data_dir", "reg_data_dir", "huggingface_token", "wandb_api_key", "model_type",
        "tokenizer_cache_dir", *METADATA_FLAGS, *RESUME_FLAGS,
    }
    | {role.flag for role in FILE_ROLES.values()}
    | set(PARAMS)
)  # fmt: skip


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
    model_files: Mapping[str, str]  # FILE_ROLES name → absolute path
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
    tokenizer_cache_dir: str = ""  # the node's: tokenizers load from here without internet
    env: Mapping[str, str] = field(default_factory=dict)  # the node's trainer environment
    # "title", "author", "description" → --metadata_<key> (the LoRA file's own description)
    metadata: Mapping[str, str] = field(default_factory=dict)
    # Continue from a saved training state (`--save_state` folder) of epoch `resume_epoch`.
    resume_dir: str = ""
    resume_epoch: int | None = None


@dataclass(frozen=True)
class BuiltCommand:
    """The argv to run and the texts of the files it references."""

    script: str
    argv: list[str]
    cwd: str
    dataset_config: str
    sample_prompts: str
    env: dict[str, str] = field(default_factory=dict)


def accepted_flags(script: str) -> frozenset[str]:
    """The option names `script` accepts (KeyError for a script we do not know)."""
    return DEMO_FLAGS if script == spec("demo").script else ACCEPTED_FLAGS[script]


def command_text(argv: list[str]) -> str:
    """The command as one line a user can paste into a shell (each argument quoted as needed)."""
    return shlex.join(argv)


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
    argv = [job.python, "-m", spec("demo").script]
    argv += ["--dataset_config", toml_path, "--output_dir", job.output_dir]
    argv += ["--output_name", job.output_name]
    for key in ("max_train_epochs", "network_dim", "network_alpha", "learning_rate"):
        argv += [f"--{key}", format_value(p[key])]
    argv += ["--resolution", str(int(p["resolution"]))]
    argv += ["--train_batch_size", format_value(p["train_batch_size"])]
    argv += ["--save_every_n_epochs", format_value(p["save_every_n_epochs"])]
    argv += _sample_flags(job, prompts_path)
    argv += ["--seed", format_value(p["seed"])]
    if p.get("save_state"):
        argv.append("--save_state")
    argv += _metadata_flags(job)
    argv += _resume_flags(job)
    return argv


def _resume_flags(job: TrainJob) -> list[str]:
    """`--resume DIR --initial_epoch E+1`. sd-scripts would also start from the epoch of the
    state's `current_step`, but after a resume its step count restarts at 0, so a state saved
    by a resumed run holds too small a count: the epoch is given, from the state's name."""
    if not job.resume_dir:
        return []
    flags = ["--resume", job.resume_dir]
    if job.resume_epoch:
        flags += ["--initial_epoch", str(job.resume_epoch + 1)]
    return flags


def _metadata_flags(job: TrainJob) -> list[str]:
    """`--metadata_title=…` and the like: one argument each, so that a value starting with
    "-" (free text: the run's name) is never read as an option."""
    flags = []
    for flag in METADATA_FLAGS:
        # One line of text: no NUL (exec refuses it), line breaks and runs of spaces squeezed.
        raw = str(job.metadata.get(flag.removeprefix("metadata_"), "")).replace("\x00", "")
        value = " ".join(raw.split())
        if value:
            flags.append(f"--{flag}={value}")
    return flags


def _model_flags(arch: ArchSpec, files: Mapping[str, str]) -> list[str]:
    missing = [name for name in arch.files if not files.get(name)]
    if missing:
        raise ValueError(f"{arch.key} needs these model files: {', '.join(missing)}")
    flags: list[str] = []
    for role in arch.file_roles:
        if files.get(role.name):
            flags += [f"--{role.flag}", files[role.name]]
    return flags


def _param_flags(params: dict) -> list[str]:
    """Flags for the knobs, in the table's order: a stored run's params come back from
    PostgreSQL's jsonb in another key order, and its command must be the same."""
    flags: list[str] = []
    for key in PARAMS:
        value = params.get(key)
        if key in SPECIAL_KEYS or key in DATASET_KEYS or key in SUBSET_KEYS or value is None:
            continue
        if key == "max_train_epochs" and params.get("max_train_steps"):
            continue  # sd-scripts lets epochs override steps: emit only the one chosen
        if PARAMS[key].kind == "bool":
            if value:
                flags.append(f"--{key}")
            continue
        if key == "blocks_to_swap" and not value:
            continue
        flags += [f"--{key}", format_value(value)]
        if key == "optimizer_type" and value == "Adafactor":
            flags += ["--optimizer_args", *ADAFACTOR_ARGS]
    return flags


def _sample_flags(job: TrainJob, prompts_path: str) -> list[str]:
    if not (job.sample_prompts and samples_during_training(job.params)):
        return []
    flags = ["--sample_prompts", prompts_path]
    for key in ("sample_every_n_epochs", "sample_every_n_steps"):
        if job.params.get(key):
            flags += [f"--{key}", format_value(job.params[key])]
    return flags


def check_flags(script: str, argv: list[str]) -> None:
    """Raise ValueError if argv holds an option the target script does not accept."""
    accepted = accepted_flags(script)
    unknown = [a for a in argv if a.startswith("--") and a[2:].split("=")[0] not in accepted]
    if unknown:
        raise ValueError(f"{script} does not accept: {', '.join(unknown)}")


def validate_extra_flags(architecture: str, flags: list[str]) -> tuple[str, ...]:
    """Check staff extra flags against the target script's own option list; returns them."""
    script = spec(architecture).script
    accepted = accepted_flags(script)
    errors: dict[str, str] = {}
    seen_flag = False
    for token in flags:
        if token.startswith("--"):
            name = token[2:].split("=", 1)[0]
            if name not in accepted:
                errors[token] = f"{script} has no option --{name}"
            elif name in MANAGED_FLAGS:
                errors[token] = f"--{name} is set by LoRA Studio; use the parameter, not a flag"
            seen_flag = True
        elif not seen_flag:
            errors[token] = "a value must follow a --flag"
    if errors:
        raise ParamError(errors)
    return tuple(flags)


def build_command(job: TrainJob) -> BuiltCommand:
    """Build the complete argv, dataset TOML and sample-prompt text for a job."""
    arch = spec(job.architecture)
    if not job.subsets:
        raise ValueError("a run needs at least one image folder")
    toml_path = _join(job.work_dir, DATASET_TOML)
    prompts_path = _join(job.work_dir, SAMPLE_PROMPTS_TXT)
    prompts_text = prompt_file_text(job.sample_prompts, arch, job.params)
    dataset = build_dataset_toml(job.subsets, job.params)
    env = {**job.env, "PYTHONUNBUFFERED": "1"}

    if not arch.on_gpu:
        argv = _demo_argv(job, toml_path, prompts_path)
        check_flags(arch.script, argv)
        return BuiltCommand(arch.script, argv, "", dataset, prompts_text, env)

    flags = ["--console_log_simple", "--dataset_config", toml_path]
    flags += _model_flags(arch, job.model_files)
    flags += list(arch.fixed_args)
    flags += ["--network_module", arch.network_module]
    flags += ["--output_dir", job.output_dir, "--output_name", job.output_name]
    flags += ["--save_model_as", "safetensors", "--logging_dir", job.logging_dir]
    flags += _metadata_flags(job)
    flags += ["--max_data_loader_n_workers", "2"]
    if job.tokenizer_cache_dir:
        flags += ["--tokenizer_cache_dir", job.tokenizer_cache_dir]
    flags += _param_flags(job.params)
    flags += _sample_flags(job, prompts_path)
    flags += _resume_flags(job)
    flags += list(job.extra_flags)
    script_path = _join(job.sdscripts_dir, arch.script)
    argv = [job.python, script_path, *flags]
    check_flags(arch.script, flags)
    return BuiltCommand(arch.script, argv, job.sdscripts_dir, dataset, prompts_text, env)
