"""The kinds of facts an architecture's registry entry holds (sdscripts.architectures).

Pure: no Django, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FileRole:
    """One kind of model file a base model can hold (a `BaseModel` field of the same name)."""

    name: str  # BaseModel field name
    flag: str  # the sd-scripts option that takes its path
    label: str
    # Matched (re.search) against a file name, lower-cased, with "_" for anything not a-z0-9
    # and then with those removed ("sd_xl_base" and "sdxlbase"); "" = never guessed by name.
    name_pattern: str = ""


FILE_ROLES: dict[str, FileRole] = {
    role.name: role
    for role in (
        FileRole("checkpoint", "pretrained_model_name_or_path", "Checkpoint"),
        FileRole("clip_l", "clip_l", "CLIP-L", r"clipl|clipvitl"),
        FileRole("clip_g", "clip_g", "CLIP-G", r"clipg|clipvitg"),
        FileRole("t5xxl", "t5xxl", "T5-XXL", r"t5xxl"),
        FileRole("gemma2", "gemma2", "Gemma 2", r"gemma"),
        FileRole("ae", "ae", "Autoencoder (FLUX AE)", r"^(flux1?_)?ae$|^(?=.*flux)(?=.*vae)"),
        FileRole("vae", "vae", "VAE (optional)", r"(^|_)vae($|_)|^vae|vae$"),
    )
}


@dataclass(frozen=True)
class TextEncoder:
    """One text encoder as the VRAM planner sees it (counts: bench/model_sizes.py)."""

    name: str  # its FILE_ROLES name
    params: int
    embedding_params: int  # sd-scripts keeps these in the compute dtype under --fp8_base
    layers: int
    hidden: int
    tokens: int  # per caption (sd-scripts' default maximum length)
    lora_per_rank: int  # LoRA parameters per unit of rank (the network module's defaults)
    # LoRA-trained unless --network_train_unet_only, as sd-scripts does; a trained encoder
    # stays on the GPU even when text-encoder outputs are cached.
    trained: bool


@dataclass(frozen=True)
class VramProfile:
    """Memory facts of one architecture (sdscripts.vram adds them up).

    Parameter counts are exact, measured from sd-scripts' own model classes by
    bench/model_sizes.py (docs/vram.md); the activation figures are calibrated against
    sd-scripts' published memory figures (tests/sdscripts/test_vram.py).
    """

    base_params: int  # trainable base model (U-Net / DiT): parameters + persistent buffers
    text_encoders: tuple[TextEncoder, ...]
    vae_params: int
    lora_per_rank: int  # U-Net / DiT LoRA parameters per unit of rank
    act_gc_mib: float  # activations per image at 1024x1024 with gradient checkpointing
    act_no_gc_factor: float  # activations without checkpointing = factor x with
    swap_unit_params: int = 0  # parameters one unit of --blocks_to_swap takes off the GPU


@dataclass(frozen=True)
class Tokenizers:
    """How sd-scripts loads an architecture's tokenizers: `module.strategy(*args,
    tokenizer_cache_dir=DIR)`, its script's `get_tokenize_strategy`, run at the start of every
    run. check_node calls the same class offline; detection looks for `repos` in a Hugging
    Face cache. Read library/strategy_*.py of sd-scripts for these facts.
    """

    module: str  # e.g. "library.strategy_sd"
    strategy: str  # the TokenizeStrategy subclass
    args: tuple[object, ...]  # positional arguments before tokenizer_cache_dir (JSON values)
    repos: tuple[str, ...]  # the Hugging Face Hub repositories it loads tokenizers from
    # How a repository sits in --tokenizer_cache_dir: "saved" = `org_name/` (the base class
    # saves it there after an online load); "hub" = a hub cache, `models--org--name/`
    # (Lumina passes the folder to from_pretrained as cache_dir and never saves into it).
    cache_layout: str = "saved"

    def cache_folder(self, repo: str) -> str:
        """The folder name `repo` has in a tokenizer cache folder."""
        if self.cache_layout == "hub":
            return hub_folder(repo)
        return repo.replace("/", "_")


def hub_folder(repo: str) -> str:
    """The folder of repository `repo` in a Hugging Face hub cache (`models--org--name`)."""
    return "models--" + repo.replace("/", "--")


@dataclass(frozen=True)
class Inference:
    """How a LoRA of this architecture is rendered by ComfyUI (or SwarmUI) for evaluation.

    `workflow` names an API-format workflow in training/evaluation/workflows/, built from
    ComfyUI's core nodes; its "$name" placeholders are filled per image (workflow.py). The
    sampler settings are the usual ones for the model family; the size and steps of an
    evaluation come from the run's own resolution and sample_steps.
    """

    workflow: str
    vram_mib: int  # what rendering takes on the GPU, roughly (fp16 weights + activations)
    cfg: float
    sampler: str = "euler"
    scheduler: str = "normal"
    negative: str = ""
    prompt_prefix: str = ""  # put before every prompt (Lumina 2's system prompt)
    swarm_cfg: float | None = None  # SwarmUI's cfgscale, when it differs from `cfg`
