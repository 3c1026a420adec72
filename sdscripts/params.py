"""Every knob a training run can set: types, bounds, choices and cross-field rules.

Names are sd-scripts' own option names, so a lab's existing recipes carry over. Which
architectures a knob applies to, and per-architecture defaults and limits, come from the
registry (`sdscripts.architectures`): a knob names the feature it needs. sd-scripts checks
many rules late (at model load) or never, so bad combinations are refused here, before a run
is queued; docs/sd-scripts.md lists them with their source. Pure: no Django, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from sdscripts.architectures import (
    BLOCK_SWAP,
    CPU_OFFLOAD,
    FLOW,
    GUIDANCE,
    NOISE_OFFSET,
    SD_SCRIPTS,
    TE_CACHE,
    ArchSpec,
    UnknownArchitecture,
    spec,
)
from sdscripts.optimizers import OPTIMIZER_MODULES as OPTIMIZER_MODULES
from sdscripts.optimizers import OPTIMIZERS, SCHEDULERS
from sdscripts.rules import cross_field_errors


@dataclass(frozen=True)
class Param:
    """One knob: sd-scripts option name, type, default, bounds and the feature it needs."""

    name: str
    kind: str  # "int" | "float" | "bool" | "choice" | "text" (max = its longest length)
    default: object
    feature: str  # an architecture feature (sdscripts.architectures), "" = every architecture
    help: str
    student: bool = True
    min: float | None = None
    max: float | None = None
    choices: tuple = ()
    optional: bool = False  # None (unset, not emitted) is allowed

    def applies_to(self, arch: ArchSpec) -> bool:
        """Whether this knob exists for an architecture."""
        return not self.feature or self.feature in arch.features


def _p(name, kind, default, feature, help, **kw) -> Param:
    return Param(name=name, kind=kind, default=default, feature=feature, help=help, **kw)


_ALL, _SD = "", SD_SCRIPTS

PARAMS: dict[str, Param] = {
    p.name: p
    for p in [
        # sd-scripts itself has no lower bound (64 px trains; samples are at least 64 px).
        _p("resolution", "int", 1024, _ALL, "Training resolution in pixels (square).",
           min=64, max=2048),
        _p("train_batch_size", "int", 1, _ALL, "Images per step.", min=1, max=16),
        _p("max_train_epochs", "int", 10, _ALL, "Number of passes over the dataset.",
           min=1, max=200),
        _p("max_train_steps", "int", None, _SD,
           "Train for this many steps instead (it overrides the epochs).", min=1, max=1_000_000,
           optional=True),
        # Dataset-subset options (dataset TOML): empty means the dataset's own value.
        _p("num_repeats", "int", None, _ALL,
           "Times each image is seen per epoch (empty: the dataset's repeats).", min=1,
           max=1000, optional=True),
        _p("class_tokens", "text", None, _ALL,
           "The trigger word: the caption of images without one (empty: the dataset's).",
           max=100, optional=True),
        _p("network_dim", "int", 32, _ALL, "LoRA rank: capacity and file size.", min=1, max=256),
        _p("network_alpha", "float", 16.0, _ALL, "LoRA alpha: scales the update (often dim/2).",
           min=0.001, max=256),
        _p("learning_rate", "float", 1e-4, _ALL,
           "Base learning rate (about 1.0 for Prodigy or DAdaptAdam).", min=1e-7, max=10.0),
        _p("text_encoder_lr", "float", None, _SD, "Learning rate for the text encoder(s).",
           min=0.0, max=1e-2, optional=True),
        _p("unet_lr", "float", None, _SD, "Learning rate for the U-Net / DiT.",
           min=0.0, max=1e-2, optional=True),
        _p("optimizer_type", "choice", "AdamW8bit", _SD, "Optimizer.", choices=OPTIMIZERS),
        _p("lr_scheduler", "choice", "constant", _SD, "Learning-rate schedule.",
           choices=SCHEDULERS),
        _p("lr_warmup_steps", "int", 0, _SD, "Warm-up steps (not with 'constant').",
           min=0, max=10000),
        _p("mixed_precision", "choice", "bf16", _SD, "Compute precision.",
           choices=("no", "fp16", "bf16"), student=False),
        _p("save_precision", "choice", "bf16", _SD, "Precision of the saved LoRA.",
           choices=("float", "fp16", "bf16"), student=False),
        _p("seed", "int", 42, _ALL, "Random seed.", min=0, max=2**31 - 1),
        _p("save_every_n_epochs", "int", 1, _ALL, "Save a LoRA every N epochs.", min=1, max=200),
        _p("save_every_n_steps", "int", None, _SD, "Also save a LoRA every N steps.",
           min=1, max=1_000_000, optional=True),
        _p("sample_every_n_epochs", "int", 1, _ALL, "Sample images every N epochs (0 = never).",
           min=0, max=200),
        _p("sample_every_n_steps", "int", None, _SD, "Also sample images every N steps.",
           min=1, max=1_000_000, optional=True),
        _p("sample_steps", "int", 20, _ALL, "Denoising steps per sample image.", min=1, max=100),
        _p("gradient_checkpointing", "bool", False, _SD,
           "Recompute activations: much less memory, about 20-30 % slower."),
        _p("cache_latents", "bool", True, _SD, "Encode images once (no colour aug/random crop)."),
        _p("cache_latents_to_disk", "bool", False, _SD, "Keep cached latents on disk."),
        _p("cache_text_encoder_outputs", "bool", False, TE_CACHE,
           "Encode captions once and unload the text encoders (no caption shuffle/dropout)."),
        _p("cache_text_encoder_outputs_to_disk", "bool", False, TE_CACHE,
           "Keep cached text-encoder outputs on disk."),
        _p("network_train_unet_only", "bool", False, _SD,
           "Train only the U-Net / DiT, not the text encoders."),
        _p("fp8_base", "bool", False, _SD, "Hold the frozen base model in fp8 (half memory)."),
        _p("blocks_to_swap", "int", 0, BLOCK_SWAP,
           "Blocks swapped to CPU RAM (less VRAM, slower).", min=0),
        _p("cpu_offload_checkpointing", "bool", False, CPU_OFFLOAD,
           "Offload checkpointed tensors to CPU (FLUX.1 only).", student=False),
        _p("shuffle_caption", "bool", False, _SD, "Shuffle comma-separated caption tags."),
        _p("caption_dropout_rate", "float", 0.0, _SD, "Share of steps with an empty caption.",
           min=0.0, max=1.0),
        _p("keep_tokens", "int", 0, _SD, "Leading tags kept in place when shuffling.",
           min=0, max=32),
        _p("flip_aug", "bool", False, _SD, "Random horizontal flips."),
        _p("color_aug", "bool", False, _SD, "Weak colour augmentation.", student=False),
        _p("random_crop", "bool", False, _SD, "Random crops.", student=False),
        _p("enable_bucket", "bool", True, _SD, "Aspect-ratio buckets.", student=False),
        _p("min_bucket_reso", "int", 256, _SD, "Smallest bucket side.", min=64, max=4096,
           student=False),
        _p("max_bucket_reso", "int", 1024, _SD, "Largest bucket side.", min=64, max=4096,
           student=False),
        _p("bucket_reso_steps", "int", 64, _SD, "Bucket size step.", min=8, max=256,
           student=False),
        _p("max_grad_norm", "float", 1.0, _SD, "Gradient clipping (0 = off).", min=0.0,
           max=100.0, student=False),
        _p("noise_offset", "float", None, NOISE_OFFSET, "Noise offset (about 0.05-0.1).",
           min=0.0, max=1.0, optional=True),
        # A run that saved its state can be resumed (training/resume.py); only its latest
        # state is kept, so it costs one state's disk, not one per epoch.
        _p("save_state", "bool", False, _ALL,
           "Save the training state at each saved epoch, so that a failed or cancelled run "
           "can be resumed from there."),
        _p("guidance_scale", "float", 1.0, GUIDANCE, "Guidance used in training (FLUX.1).",
           min=0.0, max=10.0, student=False),
        _p("timestep_sampling", "choice", "shift", FLOW, "Timestep sampling (flow matching).",
           choices=("sigma", "uniform", "sigmoid", "shift"), student=False),
        _p("model_prediction_type", "choice", "raw", FLOW, "Model prediction handling.",
           choices=("raw", "additive", "sigma_scaled"), student=False),
        _p("discrete_flow_shift", "float", 3.1582, FLOW, "Discrete flow shift.",
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
    arch = spec(architecture)
    return [p for p in PARAMS.values() if p.applies_to(arch)]


def default_for(param: Param, architecture: str) -> object:
    """The default of one knob for an architecture."""
    return spec(architecture).param_defaults.get(param.name, param.default)


def defaults(architecture: str) -> dict:
    """All defaults for an architecture."""
    return {p.name: default_for(p, architecture) for p in params_for(architecture)}


def bounds(p: Param, architecture: str, rule: dict | None = None) -> tuple:
    """(min, max, choices) of a knob for an architecture, narrowed by a preset's `rule`.

    The one place bounds are merged: the table's, the architecture's (the registry) and the
    preset's student rule ({"min", "max", "choices"}), the narrowest winning.
    """
    arch = spec(architecture)
    lo, hi = arch.param_limits.get(p.name, (p.min, p.max))
    if p.name == "blocks_to_swap":
        hi = arch.max_blocks_to_swap
    choices = arch.param_choices.get(p.name, p.choices)
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


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def _coerce(p: Param, value: object, choices: tuple = ()) -> object:
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
    if p.kind == "text":  # one line; it ends up in the dataset TOML and in folder names
        text = " ".join(str(value).split())
        if any(c in "/\\" or ord(c) < 32 or 127 <= ord(c) < 160 for c in text):
            raise ValueError("cannot hold slashes or control characters")
        return text
    # choice: case-insensitive, returned in canonical spelling
    text = str(value).strip()
    choices = choices or p.choices
    for choice in choices:
        if choice.lower() == text.lower():
            return choice
    raise ValueError(f"must be one of {', '.join(choices)}")


def _is_neutral(value: object) -> bool:
    """True when a value means 'off', so a form may send it for a knob that does not apply."""
    return value in (None, False, 0, "", "false", "False", "0")


def _check_bounds(p: Param, value: object, lo, hi, choices) -> str | None:
    if value is None:
        return None
    if p.kind == "text" and hi is not None and len(value) > hi:
        return f"must be at most {hi:g} characters"
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
    try:
        arch = spec(architecture)
    except UnknownArchitecture as exc:
        raise ParamError({"architecture": str(exc)}) from None
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
            if not p.applies_to(arch):
                if not _is_neutral(raw):
                    errors[key] = f"not available for {architecture}; remove it"
                continue
            try:
                typed = _coerce(p, raw, bounds(p, architecture)[2])
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

    explicit = set(base or {}) | set(values or {})
    if "min_bucket_reso" in result and "min_bucket_reso" not in explicit:
        # Below the default smallest bucket, buckets start at the resolution itself.
        resolution = result.get("resolution")
        if isinstance(resolution, int) and resolution < result["min_bucket_reso"]:
            step = arch.bucket_step
            result["min_bucket_reso"] = max(
                PARAMS["min_bucket_reso"].min, resolution // step * step
            )

    for key, value in result.items():
        if key in errors:
            continue
        p = PARAMS[key]
        lo, hi, choices = bounds(p, architecture, bounds_rules.get(key))
        problem = _check_bounds(p, value, lo, hi, choices)
        if problem:
            errors[key] = problem

    if not errors:
        errors.update(cross_field_errors(arch, result))
    if errors:
        raise ParamError(errors)
    return result


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
