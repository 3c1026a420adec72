"""The architecture registry: everything LoRA Studio knows about one kind of base model.

One frozen `ArchSpec` per architecture. Choices, parameter defaults and limits, the command
builder, the VRAM planner, model-file detection, the base model's validation and the runner
all read it; nothing else lists architectures. To add one, add an entry here (and its tests);
docs/architectures.md says what each field means and where the facts come from; the kinds of
facts an entry holds (file roles, VRAM profile, tokenizers, inference) are in arch_facts.py.
Pure: no Django, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

# The parts an entry is made of live beside it; imported from here by the rest of the code.
from sdscripts.arch_facts import (  # noqa: F401
    FILE_ROLES,
    FileRole,
    Inference,
    TextEncoder,
    Tokenizers,
    VramProfile,
    hub_folder,
)

_CLIP_L_TOK = "openai/clip-vit-large-patch14"
_CLIP_G_TOK = "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k"
_T5_TOK = "google/t5-v1_1-xxl"
# FLUX.1 and Chroma share FluxTokenizeStrategy: it loads CLIP-L's tokenizer even for Chroma.
_FLUX_TOKENIZERS = Tokenizers(
    "library.strategy_flux", "FluxTokenizeStrategy", (512,), (_CLIP_L_TOK, _T5_TOK)
)
_SD3_TOKENIZERS = Tokenizers(
    "library.strategy_sd3", "Sd3TokenizeStrategy", (256,), (_CLIP_L_TOK, _CLIP_G_TOK, _T5_TOK)
)


# Features an architecture has; `sdscripts.params` marks each knob with the feature it needs.
SD_SCRIPTS = "sd_scripts"  # trained by an sd-scripts script (not the built-in demo)
TE_CACHE = "text_encoder_cache"  # --cache_text_encoder_outputs
BLOCK_SWAP = "block_swap"  # --blocks_to_swap
FLOW = "flow_matching"  # --timestep_sampling, --model_prediction_type, --discrete_flow_shift
GUIDANCE = "guidance"  # --guidance_scale
NOISE_OFFSET = "noise_offset"
CPU_OFFLOAD = "cpu_offload_checkpointing"


@dataclass(frozen=True)
class ArchSpec:
    """One architecture: how sd-scripts trains it and what LoRA Studio needs to know."""

    key: str
    label: str
    script: str  # the training script (or `python -m` module for the demo)
    network_module: str = ""
    files: tuple[str, ...] = ()  # FILE_ROLES names the trainer needs, checkpoint first
    optional_files: tuple[str, ...] = ()
    fixed_args: tuple[str, ...] = ()  # always on the command line
    features: frozenset[str] = frozenset()
    # sd-scripts: SDXL may cache text-encoder outputs only when the U-Net alone is trained.
    te_cache_needs_unet_only: bool = False
    max_blocks_to_swap: int = 0
    bucket_step: int = 32  # bucket_reso_steps must be a multiple of this
    param_defaults: Mapping[str, object] = field(default_factory=dict)
    param_limits: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    param_choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    vram: VramProfile | None = None  # None: trains on the CPU (the demo)
    # Options appended to every sample prompt line (sd-scripts' " --g 0" style), as a dict.
    sample_options: Mapping[str, object] = field(default_factory=dict)
    name_pattern: str = ""  # recognises its checkpoints by file name (as FileRole)
    name_priority: int = 50  # lower is tried first when several patterns match
    tokenizers: Tokenizers | None = None  # None: loads none (the demo)
    # Time, before the lab has measured any (docs/estimates.md): seconds per step at the
    # default resolution, batch 1, no saver that slows it, on an RTX 4090 / A100-class GPU.
    prior_step_s: float = 1.0
    # The steps the new-run page aims its proposed repeats and epochs at (docs/estimates.md).
    target_steps: int = 1500
    inference: Inference | None = None  # None: its LoRAs cannot be evaluated (the demo)

    @property
    def on_gpu(self) -> bool:
        """Whether runs of this architecture need a GPU (the demo trains on the CPU)."""
        return self.vram is not None

    @property
    def file_roles(self) -> tuple[FileRole, ...]:
        """The roles of the required files, then the optional ones."""
        return tuple(FILE_ROLES[name] for name in (*self.files, *self.optional_files))

    @property
    def encoders(self) -> tuple[str, ...]:
        """The required files besides the checkpoint."""
        return tuple(name for name in self.files if name != "checkpoint")


_CLIP_L = TextEncoder("clip_l", 123_060_480, 38_004_480, 12, 768, 77, 165_888, True)
_CLIP_L_PROJ = replace(_CLIP_L, params=123_650_304)  # SD 3 loads it with its projection
_CLIP_G = TextEncoder("clip_g", 694_659_840, 63_340_800, 32, 1280, 77, 737_280, True)
# T5-XXL gets LoRA only with `--network_args train_t5xxl=True` (then no output caching).
_T5 = TextEncoder("t5xxl", 4_762_310_656, 131_598_336, 24, 4096, 512, 1_818_624, False)
_GEMMA2 = TextEncoder("gemma2", 2_614_341_888, 589_824_000, 26, 2304, 256, 1_297_920, True)
_SD3_TES = (_CLIP_L_PROJ, _CLIP_G, _T5)
# FLUX.1 dev; blocks_to_swap N takes N//2 double and 2*(N - N//2) single blocks off the GPU,
# so one unit is half a double block and one single block.
_FLUX_VRAM = VramProfile(
    11_901_408_320, (_CLIP_L, _T5), 83_819_683, 4_786_176, 4630, 5.0, 311_507_456
)
_SD = frozenset({SD_SCRIPTS})
_FLUX_TIMESTEPS = ("sigma", "uniform", "sigmoid", "shift", "flux_shift")
_BIG_BUCKETS = {"max_bucket_reso": 2048}


def _frozen(spec: ArchSpec) -> ArchSpec:
    """The spec with read-only mappings, so no caller can change the registry."""
    for name in ("param_defaults", "param_limits", "param_choices", "sample_options"):
        object.__setattr__(spec, name, MappingProxyType(dict(getattr(spec, name))))
    return spec


# SD 3.5 Large and FLUX.1 schnell differ from these only where their entries say.
_SD35_MEDIUM = ArchSpec(
    key="sd35_medium",
    label="Stable Diffusion 3.5 Medium",
    script="sd3_train_network.py",
    network_module="networks.lora_sd3",
    files=("checkpoint", "clip_l", "clip_g", "t5xxl"),
    features=_SD | {TE_CACHE, BLOCK_SWAP},
    max_blocks_to_swap=22,
    param_defaults={"resolution": 768, **_BIG_BUCKETS},
    vram=VramProfile(2_469_663_936, _SD3_TES, 83_819_683, 1_850_880, 1700, 5.0, 92_653_957),
    name_pattern=r"sd3x?5medium|stablediffusion35medium",
    tokenizers=_SD3_TOKENIZERS,
    prior_step_s=0.7,
    inference=Inference("sd3.json", 12288, cfg=5.0, scheduler="sgm_uniform"),
)
_FLUX_DEV = ArchSpec(
    key="flux1_dev",
    label="FLUX.1 dev",
    script="flux_train_network.py",
    network_module="networks.lora_flux",
    files=("checkpoint", "clip_l", "t5xxl", "ae"),
    features=_SD | {TE_CACHE, BLOCK_SWAP, FLOW, GUIDANCE, CPU_OFFLOAD},
    max_blocks_to_swap=35,
    param_defaults={"network_train_unet_only": True, **_BIG_BUCKETS},
    param_choices={"timestep_sampling": _FLUX_TIMESTEPS},
    vram=_FLUX_VRAM,
    name_pattern=r"^(?=.*flux)(?=.*dev)",
    name_priority=20,
    tokenizers=_FLUX_TOKENIZERS,
    prior_step_s=2.5,
    target_steps=1000,
    # Guidance-distilled: cfg 1 with FluxGuidance 3.5 inside the workflow.
    inference=Inference("flux.json", 24576, cfg=1.0, scheduler="simple", swarm_cfg=1.0),
)

_SPECS = (
    ArchSpec(
        key="sd15",
        label="Stable Diffusion 1.5",
        script="train_network.py",
        network_module="networks.lora",
        files=("checkpoint",),
        optional_files=("vae",),
        fixed_args=("--sdpa",),
        features=_SD | {NOISE_OFFSET},
        bucket_step=64,
        param_defaults={"resolution": 512},
        vram=VramProfile(859_520_964, (_CLIP_L,), 83_653_863, 423_936, 1600, 3.0),
        name_pattern=r"sd15|v15",
        name_priority=90,
        tokenizers=Tokenizers(
            "library.strategy_sd", "SdTokenizeStrategy", (False, None), (_CLIP_L_TOK,)
        ),
        prior_step_s=0.25,
        inference=Inference("checkpoint.json", 3584, cfg=7.0),
    ),
    ArchSpec(
        key="sdxl",
        label="SDXL",
        script="sdxl_train_network.py",
        network_module="networks.lora",
        files=("checkpoint",),
        optional_files=("vae",),
        fixed_args=("--sdpa",),
        features=_SD | {TE_CACHE, NOISE_OFFSET},
        te_cache_needs_unet_only=True,
        param_defaults=_BIG_BUCKETS,
        vram=VramProfile(2_567_463_684, (_CLIP_L, _CLIP_G), 83_653_863, 2_659_840, 1870, 3.0),
        name_pattern=r"sdxl|xl(_|$)|pony",
        name_priority=80,
        tokenizers=Tokenizers(
            "library.strategy_sdxl", "SdxlTokenizeStrategy", (None,), (_CLIP_L_TOK, _CLIP_G_TOK)
        ),
        inference=Inference("checkpoint.json", 9216, cfg=6.0),
    ),
    _SD35_MEDIUM,
    replace(
        _SD35_MEDIUM,
        key="sd35_large",
        label="Stable Diffusion 3.5 Large",
        max_blocks_to_swap=36,
        vram=VramProfile(8_146_280_768, _SD3_TES, 83_819_683, 4_212_224, 3650, 5.0, 210_975_616),
        name_pattern=r"sd3x?5large|stablediffusion35large",
        prior_step_s=1.6,
        inference=Inference("sd3.json", 22528, cfg=4.5, scheduler="sgm_uniform"),
    ),
    _FLUX_DEV,
    replace(
        _FLUX_DEV,
        key="flux1_schnell",
        label="FLUX.1 schnell",
        vram=replace(_FLUX_VRAM, base_params=11_891_178_560),  # no guidance embedder
        name_pattern=r"^(?=.*flux)(?=.*schnell)",
    ),
    # Chroma: FLUX.1-schnell-derived, 8.9 B, no CLIP-L. sd-scripts trains it with the FLUX
    # script and `--model_type chroma`, which asserts `--apply_t5_attn_mask`; it is not
    # guidance-distilled, so training needs `--guidance_scale 0.0` and samples `--g 0`
    # with real CFG (`--l`). sd-scripts does not support cpu_offload_checkpointing for it.
    ArchSpec(
        key="chroma",
        label="Chroma",
        script="flux_train_network.py",
        network_module="networks.lora_flux",
        files=("checkpoint", "t5xxl", "ae"),
        fixed_args=("--model_type", "chroma", "--apply_t5_attn_mask"),
        features=_SD | {TE_CACHE, BLOCK_SWAP, FLOW, GUIDANCE},
        max_blocks_to_swap=35,  # the same 19 double + 38 single blocks as FLUX.1
        param_defaults={
            "network_train_unet_only": True,
            "guidance_scale": 0.0,
            "timestep_sampling": "sigmoid",
            **_BIG_BUCKETS,
        },
        param_limits={"guidance_scale": (0.0, 0.0)},
        param_choices={"timestep_sampling": _FLUX_TIMESTEPS},
        vram=VramProfile(8_899_983_424, (_T5,), 83_819_683, 3_502_080, 3460, 5.0, 226_545_152),
        sample_options={"g": 0.0, "l": 4.0, "n": "low quality, blurry"},
        name_pattern=r"chroma",
        name_priority=10,
        tokenizers=_FLUX_TOKENIZERS,
        prior_step_s=2.0,
        target_steps=1000,
        inference=Inference(
            "chroma.json", 20480, cfg=4.0, scheduler="simple", negative="low quality, blurry"
        ),
    ),
    # Lumina-Image 2.0: a 2.6 B NextDiT with Gemma 2 (2B) as its text encoder and the FLUX
    # autoencoder. Buckets must be multiples of 16; 26 layers, of which 24 can be swapped.
    ArchSpec(
        key="lumina2",
        label="Lumina-Image 2.0",
        script="lumina_train_network.py",
        network_module="networks.lora_lumina",
        files=("checkpoint", "gemma2", "ae"),
        features=_SD | {TE_CACHE, BLOCK_SWAP, FLOW},
        max_blocks_to_swap=24,
        bucket_step=16,
        param_defaults={
            "network_train_unet_only": True,
            "timestep_sampling": "nextdit_shift",
            "discrete_flow_shift": 6.0,
            **_BIG_BUCKETS,
        },
        param_choices={"timestep_sampling": (*_FLUX_TIMESTEPS, "nextdit_shift")},
        vram=VramProfile(2_609_771_456, (_GEMMA2,), 83_819_683, 1_651_776, 1700, 5.0, 87_312_576),
        name_pattern=r"lumina",
        name_priority=10,
        tokenizers=Tokenizers(
            "library.strategy_lumina",
            "LuminaTokenizeStrategy",
            ("", None),
            ("google/gemma-2-2b",),
            cache_layout="hub",
        ),
        prior_step_s=1.5,
        # Its text encoder expects the system prompt Lumina-Image 2.0 was trained with.
        inference=Inference(
            "lumina2.json",
            12288,
            cfg=4.0,
            scheduler="simple",
            prompt_prefix="You are an assistant designed to generate superior images with the "
            "superior degree of image-text alignment based on textual prompts or user prompts. "
            "<Prompt Start> ",
        ),
    ),
    ArchSpec(
        key="demo",
        label="Demo (CPU, built-in toy model)",
        script="demo_trainer",
        param_defaults={
            "resolution": 64,
            "max_train_epochs": 5,
            "network_dim": 4,
            "network_alpha": 4.0,
            "learning_rate": 1e-3,
            "sample_steps": 8,
        },
        param_limits={
            "resolution": (32, 256),
            "max_train_epochs": (1, 20),
            "network_dim": (1, 32),
            "learning_rate": (1e-7, 1e-2),
        },
        prior_step_s=0.1,  # a tiny CPU model: start-up and samples dominate
        target_steps=100,  # "finishes in well under a minute"
    ),
)

ARCHITECTURES: dict[str, ArchSpec] = {spec.key: _frozen(spec) for spec in _SPECS}


class UnknownArchitecture(ValueError):
    """An architecture key the registry does not hold."""


def spec(key: str) -> ArchSpec:
    """The spec of architecture `key`; UnknownArchitecture names the valid keys."""
    try:
        return ARCHITECTURES[key]
    except KeyError:
        raise UnknownArchitecture(
            f"unknown architecture {key!r}; use one of {', '.join(ARCHITECTURES)}"
        ) from None


def choices() -> list[tuple[str, str]]:
    """(key, label) pairs in registry order, for model fields and forms."""
    return [(s.key, s.label) for s in ARCHITECTURES.values()]


def scripts() -> frozenset[str]:
    """Every training script some architecture uses."""
    return frozenset(s.script for s in ARCHITECTURES.values())
