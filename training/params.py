"""Every knob a training run can set: types, bounds, choices, architectures and cross-field rules.

Names are sd-scripts' own option names, so a lab's existing recipes carry over. Pure: no Django,
no I/O. The rules come from sd-scripts' source (see /work/shared/SDSCRIPTS.md): sd-scripts
checks many of them late (at model load) or never, so we refuse bad combinations before queueing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ARCHITECTURES = ("sd15", "sdxl", "sd35_medium", "sd35_large", "flux1_dev", "flux1_schnell", "demo")
SD3 = frozenset({"sd35_medium", "sd35_large"})
FLUX = frozenset({"flux1_dev", "flux1_schnell"})
DIT = SD3 | FLUX
REAL = frozenset(ARCHITECTURES) - {"demo"}
ALL = frozenset(ARCHITECTURES)

# --blocks_to_swap maxima, checked by sd-scripts only at model load.
MAX_BLOCKS_TO_SWAP = {"sd35_large": 36, "sd35_medium": 22, "flux1_dev": 35, "flux1_schnell": 35}

OPTIMIZERS = (
    "AdamW",
    "AdamW8bit",
    "PagedAdamW8bit",
    "Lion",
    "Lion8bit",
    "Prodigy",
    "Adafactor",
    "DAdaptAdam",
    "AdamWScheduleFree",
)
SCHEDULERS = (
    "constant",
    "constant_with_warmup",
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "adafactor",
)


@dataclass(frozen=True)
class Param:
    """One knob: sd-scripts option name, type, default, bounds and where it applies."""

    name: str
    kind: str  # "int" | "float" | "bool" | "choice"
    default: object
    archs: frozenset
    help: str
    student: bool = True
    min: float | None = None
    max: float | None = None
    choices: tuple = ()
    optional: bool = False  # None (unset, not emitted) is allowed
    arch_defaults: dict = field(default_factory=dict)
    arch_max: dict = field(default_factory=dict)
    arch_min: dict = field(default_factory=dict)


def _p(name, kind, default, archs, help, **kw) -> Param:
    return Param(name=name, kind=kind, default=default, archs=frozenset(archs), help=help, **kw)


PARAMS: dict[str, Param] = {
    p.name: p
    for p in [
        _p("resolution", "int", 1024, ALL, "Training resolution in pixels (square).",
           min=256, max=2048, arch_min={"demo": 32}, arch_max={"demo": 256},
           arch_defaults={"sd15": 512, "sd35_medium": 768, "sd35_large": 768, "demo": 64}),
        _p("train_batch_size", "int", 1, ALL, "Images per step.", min=1, max=16),
        _p("max_train_epochs", "int", 10, ALL, "Number of passes over the dataset.",
           min=1, max=200, arch_max={"demo": 20}, arch_defaults={"demo": 5}),
        _p("network_dim", "int", 32, ALL, "LoRA rank: capacity and file size.",
           min=1, max=256, arch_max={"demo": 32}, arch_defaults={"demo": 4}),
        _p("network_alpha", "float", 16.0, ALL, "LoRA alpha: scales the update (often dim/2).",
           min=0.001, max=256, arch_defaults={"demo": 4.0}),
        _p("learning_rate", "float", 1e-4, ALL, "Base learning rate.", min=1e-7, max=1e-2,
           arch_defaults={"demo": 1e-3}),
        _p("text_encoder_lr", "float", None, REAL, "Learning rate for the text encoder(s).",
           min=0.0, max=1e-2, optional=True),
        _p("unet_lr", "float", None, REAL, "Learning rate for the U-Net / DiT.",
           min=0.0, max=1e-2, optional=True),
        _p("optimizer_type", "choice", "AdamW8bit", REAL, "Optimizer.", choices=OPTIMIZERS),
        _p("lr_scheduler", "choice", "constant", REAL, "Learning-rate schedule.",
           choices=SCHEDULERS),
        _p("lr_warmup_steps", "int", 0, REAL, "Warm-up steps (not with 'constant').",
           min=0, max=10000),
        _p("mixed_precision", "choice", "bf16", REAL, "Compute precision.",
           choices=("no", "fp16", "bf16"), student=False),
        _p("save_precision", "choice", "bf16", REAL, "Precision of the saved LoRA.",
           choices=("float", "fp16", "bf16"), student=False),
        _p("seed", "int", 42, ALL, "Random seed.", min=0, max=2**31 - 1),
        _p("save_every_n_epochs", "int", 1, ALL, "Save a LoRA every N epochs.", min=1, max=200),
        _p("sample_every_n_epochs", "int", 1, ALL, "Sample images every N epochs (0 = never).",
           min=0, max=200),
        _p("gradient_checkpointing", "bool", False, REAL,
           "Recompute activations: much less memory, about 20-30 % slower."),
        _p("cache_latents", "bool", True, REAL, "Encode images once (no colour aug/random crop)."),
        _p("cache_latents_to_disk", "bool", False, REAL, "Keep cached latents on disk."),
        _p("cache_text_encoder_outputs", "bool", False, REAL - {"sd15"},
           "Encode captions once and unload the text encoders (no caption shuffle/dropout)."),
        _p("cache_text_encoder_outputs_to_disk", "bool", False, REAL - {"sd15"},
           "Keep cached text-encoder outputs on disk."),
        _p("network_train_unet_only", "bool", False, REAL,
           "Train only the U-Net / DiT, not the text encoders.",
           arch_defaults={"flux1_dev": True, "flux1_schnell": True}),
        _p("fp8_base", "bool", False, REAL, "Hold the frozen base model in fp8 (half memory)."),
        _p("blocks_to_swap", "int", 0, DIT, "Blocks swapped to CPU RAM (less VRAM, slower).",
           min=0, arch_max=MAX_BLOCKS_TO_SWAP),
        _p("cpu_offload_checkpointing", "bool", False, FLUX,
           "Offload checkpointed tensors to CPU (FLUX only).", student=False),
        _p("shuffle_caption", "bool", False, REAL, "Shuffle comma-separated caption tags."),
        _p("caption_dropout_rate", "float", 0.0, REAL, "Share of steps with an empty caption.",
           min=0.0, max=1.0),
        _p("keep_tokens", "int", 0, REAL, "Leading tags kept in place when shuffling.",
           min=0, max=32),
        _p("flip_aug", "bool", False, REAL, "Random horizontal flips."),
        _p("color_aug", "bool", False, REAL, "Weak colour augmentation.", student=False),
        _p("random_crop", "bool", False, REAL, "Random crops.", student=False),
        _p("enable_bucket", "bool", True, REAL, "Aspect-ratio buckets.", student=False),
        _p("min_bucket_reso", "int", 256, REAL, "Smallest bucket side.", min=64, max=4096,
           student=False),
        _p("max_bucket_reso", "int", 1024, REAL, "Largest bucket side.", min=64, max=4096,
           student=False, arch_defaults={"sdxl": 2048, "sd35_medium": 2048, "sd35_large": 2048,
                                         "flux1_dev": 2048, "flux1_schnell": 2048}),
        _p("bucket_reso_steps", "int", 64, REAL, "Bucket size step.", min=8, max=256,
           student=False),
        _p("max_grad_norm", "float", 1.0, REAL, "Gradient clipping (0 = off).", min=0.0,
           max=100.0, student=False),
        _p("noise_offset", "float", None, {"sd15", "sdxl"}, "Noise offset (about 0.05-0.1).",
           min=0.0, max=1.0, optional=True),
        _p("save_state", "bool", False, REAL, "Also save optimizer state (for resume).",
           student=False),
        _p("guidance_scale", "float", 1.0, FLUX, "FLUX guidance used in training.",
           min=0.0, max=10.0, student=False),
        _p("timestep_sampling", "choice", "shift", FLUX, "FLUX timestep sampling.",
           choices=("sigma", "uniform", "sigmoid", "shift"), student=False),
        _p("model_prediction_type", "choice", "raw", FLUX, "FLUX model prediction handling.",
           choices=("raw", "additive", "sigma_scaled"), student=False),
        _p("discrete_flow_shift", "float", 3.1582, FLUX, "FLUX discrete flow shift.",
           min=0.0, max=20.0, student=False),
    ]
}  # fmt: skip


class ParamError(ValueError):
    """Bad training parameters; `.errors` maps each field to a message that says how to fix it."""

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


def params_for(architecture: str) -> list[Param]:
    """The knobs that apply to an architecture, in table order."""
    return [p for p in PARAMS.values() if architecture in p.archs]


def default_for(param: Param, architecture: str) -> object:
    """The default of one knob for an architecture."""
    return param.arch_defaults.get(architecture, param.default)


def defaults(architecture: str) -> dict:
    """All defaults for an architecture."""
    return {p.name: default_for(p, architecture) for p in params_for(architecture)}


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def _coerce(p: Param, value: object) -> object:
    """Turn a form/CLI value into the knob's type; raises ValueError with a fix-it message."""
    if value is None or (isinstance(value, str) and value.strip() == "" and p.kind != "bool"):
        if p.optional:
            return None
        raise ValueError("a value is required")
    if p.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError("must be true or false")
    if p.kind == "int":
        if isinstance(value, bool):
            raise ValueError("must be a whole number")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError("must be a whole number")
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise ValueError(f"must be a whole number, not {value!r}") from None
    if p.kind == "float":
        if isinstance(value, bool):
            raise ValueError("must be a number")
        try:
            number = float(str(value).strip()) if not isinstance(value, int | float) else value
        except ValueError:
            raise ValueError(f"must be a number like 1e-4, not {value!r}") from None
        number = float(number)
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        return number
    # choice: case-insensitive, returned in canonical spelling
    text = str(value).strip()
    for choice in p.choices:
        if choice.lower() == text.lower():
            return choice
    raise ValueError(f"must be one of {', '.join(p.choices)}")


def _is_neutral(p: Param, value: object) -> bool:
    """True when a value means 'off', so a form may send it for a knob that does not apply."""
    return value in (None, False, 0, "", "false", "False", "0")


def _bounds(p: Param, architecture: str, rule: dict | None) -> tuple:
    lo = p.arch_min.get(architecture, p.min)
    hi = p.arch_max.get(architecture, p.max)
    choices = p.choices
    if rule:
        if rule.get("min") is not None:
            lo = rule["min"] if lo is None else max(lo, rule["min"])
        if rule.get("max") is not None:
            hi = rule["max"] if hi is None else min(hi, rule["max"])
        if rule.get("choices"):
            allowed = {str(c).lower() for c in rule["choices"]}
            choices = tuple(c for c in (choices or ()) if c.lower() in allowed) or tuple(
                rule["choices"]
            )
    return lo, hi, choices


def _check_bounds(p: Param, value: object, lo, hi, choices) -> str | None:
    if value is None:
        return None
    if p.kind in ("int", "float"):
        if lo is not None and value < lo:
            return f"must be at least {lo:g}"
        if hi is not None and value > hi:
            return f"must be at most {hi:g}"
    if choices and p.kind in ("choice",) and value not in choices:
        return f"must be one of {', '.join(choices)}"
    if choices and p.kind in ("int", "float") and value not in choices:
        return f"must be one of {', '.join(str(c) for c in choices)}"
    return None


def validate_params(
    architecture: str,
    values: dict,
    *,
    rules: dict | None = None,
    base: dict | None = None,
    student: bool = False,
) -> dict:
    """Coerce, default and check a run's parameters; returns typed values or raises ParamError.

    `base` is the preset's values (applied over the defaults), `values` the caller's overrides,
    `rules` the preset's student rules ({"locked": [...], "bounds": {name: {min,max,choices}}}).
    With `student=True`, knobs staff reserve for themselves may not differ from `base`.
    """
    if architecture not in ARCHITECTURES:
        raise ParamError(
            {"architecture": f"unknown architecture; use one of {', '.join(ARCHITECTURES)}"}
        )
    rules = rules or {}
    locked = set(rules.get("locked") or ())
    bounds_rules = rules.get("bounds") or {}
    errors: dict[str, str] = {}
    result = defaults(architecture)
    base_typed: dict = {}

    for source_name, source in (("base", base or {}), ("values", values or {})):
        for key, raw in source.items():
            p = PARAMS.get(key)
            if p is None:
                errors[key] = "unknown option; see the parameter list for valid sd-scripts names"
                continue
            if architecture not in p.archs:
                if not _is_neutral(p, raw):
                    errors[key] = f"not available for {architecture}; remove it"
                continue
            try:
                typed = _coerce(p, raw)
            except ValueError as exc:
                errors[key] = str(exc)
                continue
            if source_name == "base":
                base_typed[key] = typed
            else:
                reference = base_typed.get(key, default_for(p, architecture))
                if typed != reference:
                    if key in locked:
                        errors[key] = f"locked by the preset at {reference!r}; leave it unchanged"
                        continue
                    if student and not p.student:
                        errors[key] = "only staff may change this; leave it at the preset value"
                        continue
            result[key] = typed

    for key, value in result.items():
        if key in errors:
            continue
        p = PARAMS[key]
        lo, hi, choices = _bounds(p, architecture, bounds_rules.get(key))
        problem = _check_bounds(p, value, lo, hi, choices)
        if problem:
            errors[key] = problem

    if not errors:
        errors.update(_cross_field(architecture, result))
    if errors:
        raise ParamError(errors)
    return result


def _cross_field(arch: str, v: dict) -> dict[str, str]:
    """Rules that involve several fields, from sd-scripts' source."""
    errors: dict[str, str] = {}
    if v.get("cache_latents_to_disk"):
        v["cache_latents"] = True
    if v.get("cache_text_encoder_outputs_to_disk"):
        v["cache_text_encoder_outputs"] = True

    if v.get("cache_latents"):
        for aug in ("color_aug", "random_crop"):
            if v.get(aug):
                errors[aug] = f"cannot be used with cache_latents; turn off {aug} or cache_latents"
    if v.get("cache_text_encoder_outputs"):
        if arch == "sdxl" and not v.get("network_train_unet_only"):
            errors["network_train_unet_only"] = (
                "SDXL needs network_train_unet_only=true when cache_text_encoder_outputs is on"
            )
        if v.get("shuffle_caption"):
            errors["shuffle_caption"] = (
                "cannot shuffle captions when text-encoder outputs are cached; "
                "turn off shuffle_caption or cache_text_encoder_outputs"
            )
        if v.get("caption_dropout_rate"):
            errors["caption_dropout_rate"] = (
                "must be 0 when text-encoder outputs are cached; "
                "set it to 0 or turn off cache_text_encoder_outputs"
            )
    if v.get("cpu_offload_checkpointing"):
        if v.get("blocks_to_swap"):
            errors["cpu_offload_checkpointing"] = (
                "cannot be combined with blocks_to_swap; use one of them"
            )
        elif not v.get("gradient_checkpointing"):
            errors["cpu_offload_checkpointing"] = "needs gradient_checkpointing=true"
    if v.get("fp8_base") and v.get("mixed_precision") == "no":
        errors["fp8_base"] = "needs mixed_precision fp16 or bf16"
    if v.get("lr_warmup_steps") and v.get("lr_scheduler") == "constant":
        errors["lr_warmup_steps"] = (
            "the 'constant' scheduler takes no warm-up; set 0 or use constant_with_warmup"
        )
    if v.get("save_every_n_epochs", 1) > v.get("max_train_epochs", 1):
        errors["save_every_n_epochs"] = "must not exceed max_train_epochs"
    if arch in PARAMS["enable_bucket"].archs and v.get("enable_bucket"):
        step = v["bucket_reso_steps"]
        divisor = 64 if arch == "sd15" else 32
        if step % divisor:
            errors["bucket_reso_steps"] = f"must be divisible by {divisor} for {arch}"
        if v["min_bucket_reso"] > v["resolution"]:
            errors["min_bucket_reso"] = f"must be at most the resolution ({v['resolution']})"
        if v["max_bucket_reso"] < v["resolution"]:
            errors["max_bucket_reso"] = f"must be at least the resolution ({v['resolution']})"
    return errors


def parse_set_options(pairs: list[str]) -> dict:
    """Turn `key=value` strings (from `--set`) into a dict; unknown keys raise ParamError."""
    result: dict = {}
    errors: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().removeprefix("--")
        if not sep or not key:
            errors[pair or "set"] = "write it as key=value, e.g. network_dim=32"
        elif key not in PARAMS:
            errors[key] = "unknown option; use an sd-scripts name such as network_dim"
        else:
            result[key] = value.strip()
    if errors:
        raise ParamError(errors)
    return result


# Flags the command builder sets itself; extra flags may not override them.
MANAGED_FLAGS = frozenset(
    {
        "dataset_config", "output_dir", "output_name", "logging_dir", "network_module",
        "pretrained_model_name_or_path", "clip_l", "clip_g", "t5xxl", "ae", "vae",
        "sample_prompts", "console_log_simple", "config_file", "output_config",
        "train_data_dir", "reg_data_dir", "huggingface_token", "wandb_api_key",
    }
    | set(PARAMS)
)  # fmt: skip

SCRIPTS = {
    "sd15": "train_network.py",
    "sdxl": "sdxl_train_network.py",
    "sd35_medium": "sd3_train_network.py",
    "sd35_large": "sd3_train_network.py",
    "flux1_dev": "flux_train_network.py",
    "flux1_schnell": "flux_train_network.py",
    "demo": "training.demo_trainer",
}


def validate_extra_flags(script_or_arch: str, flags: list[str]) -> tuple[str, ...]:
    """Check staff extra flags against the target script's own option list; returns them."""
    from training.sdscripts_flags import ACCEPTED_FLAGS

    script = SCRIPTS.get(script_or_arch, script_or_arch)
    accepted = ACCEPTED_FLAGS.get(script)
    if accepted is None:
        raise ParamError({"extra_flags": f"unknown script or architecture {script_or_arch!r}"})
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
