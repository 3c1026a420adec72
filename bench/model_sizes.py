"""Exact parameter counts of every architecture LoRA Studio trains, from sd-scripts' own classes.

Run with sd-scripts' Python (torch, transformers, diffusers, accelerate), never ours:

    SD_SCRIPTS_PYTHON bench/model_sizes.py --sdscripts SD_SCRIPTS_DIR [--json]

The VRAM planner's profiles (`sdscripts/architectures.py`) hold these figures; rounded
constants had drifted from the models. Each model is built on the meta device (no memory,
no weights, nothing downloaded) with the classes and loaders sd-scripts trains with, the way
its loaders build them, and each LoRA network with the architecture's `--network_module` and
its default network arguments, at rank 1 and 2 (the difference is the count per unit of
rank). Configurations the loaders read from a checkpoint's shapes (SD 3.5's MMDiT) are given
here from the published checkpoints. docs/vram.md records the output.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import logging
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _registry():
    """LoRA Studio's architecture registry (pure), loaded by path: our repository is not put
    on sys.path, where its packages (`datasets`) would shadow sd-scripts' dependencies."""
    spec = importlib.util.spec_from_file_location("_ls_arch", ROOT / "sdscripts/architectures.py")
    module = sys.modules["_ls_arch"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ARCHITECTURES


ARCHITECTURES = _registry()


@dataclass
class Encoder:
    name: str
    params: int
    embedding_params: int  # nn.Embedding: kept in the compute dtype under --fp8_base
    layers: int
    hidden: int
    lora_per_rank: int  # LoRA parameters per unit of rank on this encoder (0: no LoRA on it)
    lora_by_default: bool  # trained unless --network_train_unet_only


@dataclass
class Sizes:
    key: str
    network_module: str
    base_params: int  # the U-Net / DiT: parameters
    base_buffers: int  # and persistent buffers (held on the GPU with the weights)
    blocks: dict[str, int]  # swappable (or transformer) blocks by kind
    block_params: dict[str, int]  # mean per block (swapping rotates every block through)
    text_encoders: list[Encoder]
    vae_params: int
    lora_per_rank: int  # U-Net / DiT LoRA parameters per unit of rank
    lora_const: int  # LoRA parameters that do not scale with rank (expected 0)


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def lora_params(lora) -> int:
    """A LoRA module's own parameters (it holds the module it wraps as `org_module`)."""
    return sum(p.numel() for n, p in lora.named_parameters() if not n.startswith("org_module"))


def n_buffers(module) -> int:
    """Persistent buffers (SD 3's pos_embed): in the state dict, on the GPU with the weights."""
    return sum(t.numel() for t in module.state_dict().values()) - n_params(module)


def meta():
    import torch

    return torch.device("meta")


@contextlib.contextmanager
def quiet():
    """sd-scripts logs every step of model building; keep the table readable."""
    logging.disable(logging.CRITICAL)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(logging.NOTSET)


def lora_counts(create, encoders) -> tuple[int, int, dict[str, int]]:
    """(per rank, constant, per encoder per rank) of the network `create(rank)` builds: every
    text-encoder LoRA module is matched to the encoder holding the module it wraps."""
    counts = []
    for rank in (1, 2):
        with meta():
            network = create(rank)
        te = {name: {id(m) for m in module.modules()} for name, module in encoders}
        per_te = {name: 0 for name in te}
        for lora in network.text_encoder_loras:
            (name,) = [n for n, ids in te.items() if id(lora.org_module) in ids]
            per_te[name] += lora_params(lora)
        counts.append((sum(lora_params(lora) for lora in network.unet_loras), per_te))
    (u1, te1), (u2, te2) = counts
    per_te = {name: te2[name] - te1[name] for name in te1}
    assert per_te == te1, "text-encoder LoRA is not linear in rank"
    return u2 - u1, 2 * u1 - u2, per_te


def encoder(name: str, module, lora_per_rank: int, default: bool) -> Encoder:
    """One text encoder; layers and width from its transformers config."""
    import torch

    cfg = module.config
    embeddings = sum(n_params(m) for m in module.modules() if isinstance(m, torch.nn.Embedding))
    layers = getattr(cfg, "num_hidden_layers", None) or cfg.num_layers
    hidden = getattr(cfg, "hidden_size", None) or cfg.d_model
    return Encoder(name, n_params(module), embeddings, layers, hidden, lora_per_rank, default)


def clip_l(with_projection: bool):
    """CLIP-L as sd-scripts loads it: FLUX, SD 1.5 and SDXL without projection, SD 3 with."""
    import torch

    if with_projection:
        from library import sd3_utils

        key = "text_encoders.clip_l.transformer.text_model.embeddings.position_embedding.weight"
        sd = {key: torch.empty(77, 768, device="meta")}
        return sd3_utils.load_clip_l(None, None, meta(), state_dict=sd)
    from library import flux_utils

    return flux_utils.load_clip_l(None, None, meta(), state_dict={})


def clip_g():
    """CLIP-G (OpenCLIP bigG text tower with projection), as SDXL and SD 3 load it."""
    import torch
    from library import sd3_utils

    key = "text_encoders.clip_g.transformer.text_model.embeddings.position_embedding.weight"
    sd = {key: torch.empty(77, 1280, device="meta")}
    return sd3_utils.load_clip_g(None, None, meta(), state_dict=sd)


def t5xxl():
    from library import flux_utils

    return flux_utils.load_t5xxl(None, None, meta(), state_dict={})


def describe(key, base, blocks, encoders, vae, create, te_args, optional=None) -> Sizes:
    """Sizes of one architecture.

    `encoders`: (name, module, LoRA-trained by default) in the order sd-scripts passes them
    (`te_args`, which may hold a dummy); `create(rank, **network_args)` builds its network;
    `optional`: network args that add LoRA to an encoder not trained by default.
    """
    modules = [(name, module) for name, module, _ in encoders]
    per_rank, const, per_te = lora_counts(lambda r: create(r, te_args), modules)
    if optional:
        extra = lora_counts(lambda r: create(r, te_args, **optional), modules)[2]
        per_te = {name: per_te[name] or extra[name] for name in per_te}
    return Sizes(
        key=key,
        network_module=ARCHITECTURES[key].network_module,
        base_params=n_params(base),
        base_buffers=n_buffers(base),
        blocks={kind: len(group) for kind, group in blocks.items()},
        block_params={kind: sum(map(n_params, g)) // len(g) for kind, g in blocks.items()},
        text_encoders=[encoder(n, m, per_te[n], default) for n, m, default in encoders],
        vae_params=n_params(vae),
        lora_per_rank=per_rank,
        lora_const=const,
    )


def sizes_sd(key: str) -> Sizes:
    """SD 1.5 and SDXL: sd-scripts' own U-Nets, networks.lora with no conv_dim."""
    from diffusers import AutoencoderKL
    from library import model_util
    from networks import lora

    if key == "sdxl":
        from library import sdxl_original_unet

        with meta():
            unet = sdxl_original_unet.SdxlUNet2DConditionModel()
        encoders = [("clip_l", clip_l(False), True), ("clip_g", clip_g(), True)]
        te_args = [m for _, m, _ in encoders]
    else:
        from library import original_unet

        with meta():
            unet = original_unet.UNet2DConditionModel(
                **model_util.create_unet_diffusers_config(False)
            )
        encoders = [("clip_l", clip_l(False), True)]
        te_args = encoders[0][1]
    with meta():
        vae = AutoencoderKL(**model_util.create_vae_diffusers_config())
    attn = [m for m in unet.modules() if type(m).__name__ == "BasicTransformerBlock"]
    return describe(
        key,
        unet,
        {"transformer": attn},
        encoders,
        vae,
        lambda r, tes, **kw: lora.create_network(1.0, r, 1.0, vae, tes, unet, **kw),
        te_args,
    )


# The MMDiT configurations sd3_utils.analyze_state_dict_state reads from the published
# checkpoints' shapes (x_embedder, pos_embed, y_embedder, context_embedder, ln_k, attn2).
SD35 = {
    "sd35_large": (38, 192, [], "5-large"),
    "sd35_medium": (24, 384, list(range(13)), "5-medium"),
}


def sizes_sd3(key: str) -> Sizes:
    from accelerate import init_empty_weights
    from library import sd3_models
    from networks import lora_sd3

    depth, pos_size, self_attn, model_type = SD35[key]
    params = sd3_models.SD3Params(
        patch_size=2,
        depth=depth,
        num_patches=pos_size**2,
        pos_embed_max_size=pos_size,
        adm_in_channels=2048,
        qk_norm="rms",
        x_block_self_attn_layers=self_attn,
        context_embedder_in_features=4096,
        context_embedder_out_features=64 * depth,
        model_type=model_type,
    )
    with init_empty_weights(include_buffers=True):
        mmdit = sd3_models.create_sd3_mmdit(params)
    with meta():
        vae = sd3_models.SDVAE(device=meta())
    encoders = [
        ("clip_l", clip_l(True), True),
        ("clip_g", clip_g(), True),
        ("t5xxl", t5xxl(), False),
    ]
    return describe(
        key,
        mmdit,
        {"joint": list(mmdit.joint_blocks)},
        encoders,
        vae,
        lambda r, tes, **kw: lora_sd3.create_network(1.0, r, 1.0, vae, tes, mmdit, **kw),
        [m for _, m, _ in encoders],
        optional={"train_t5xxl": "True"},
    )


def sizes_flux(key: str) -> Sizes:
    """FLUX.1 dev/schnell (dev adds the guidance embedder) and Chroma (no CLIP-L)."""
    from library import flux_models, flux_utils
    from networks import lora_flux

    with meta():
        if key == "chroma":
            from library import chroma_models

            model = chroma_models.Chroma(chroma_models.chroma_params)
            first = flux_utils.dummy_clip_l()  # what sd-scripts passes for Chroma
        else:
            model = flux_models.Flux(flux_models.configs[key.split("_")[1]].params)
        ae = flux_models.AutoEncoder(flux_models.configs["dev"].ae_params)
    t5 = t5xxl()
    if key == "chroma":
        encoders = [("t5xxl", t5, False)]
    else:
        first = clip_l(False)
        encoders = [("clip_l", first, True), ("t5xxl", t5, False)]
    return describe(
        key,
        model,
        {"double": list(model.double_blocks), "single": list(model.single_blocks)},
        encoders,
        ae,
        lambda r, tes, **kw: lora_flux.create_network(1.0, r, 1.0, ae, tes, model, **kw),
        [first, t5],
        optional={"train_t5xxl": "True"},
    )


def sizes_lumina(key: str) -> Sizes:
    from library import flux_models, lumina_models, lumina_util
    from networks import lora_lumina

    with meta():
        model = lumina_models.NextDiT_2B_GQA_patch2_Adaln_Refiner()
        ae = flux_models.AutoEncoder(flux_models.configs["schnell"].ae_params)
    gemma = lumina_util.load_gemma2(None, None, meta(), state_dict={})
    return describe(
        key,
        model,
        {k: list(getattr(model, k)) for k in ("layers", "noise_refiner", "context_refiner")},
        [("gemma2", gemma, True)],
        ae,
        lambda r, tes, **kw: lora_lumina.create_network(1.0, r, 1.0, ae, tes, model, **kw),
        [gemma],
    )


BUILDERS = {
    "sd15": sizes_sd,
    "sdxl": sizes_sd,
    "sd35_medium": sizes_sd3,
    "sd35_large": sizes_sd3,
    "flux1_dev": sizes_flux,
    "flux1_schnell": sizes_flux,
    "chroma": sizes_flux,
    "lumina2": sizes_lumina,
}


def measure(sdscripts: Path) -> list[Sizes]:
    """Sizes of every GPU architecture in the registry; fails on one it cannot build."""
    sys.path.insert(0, str(sdscripts))
    missing = [k for k, s in ARCHITECTURES.items() if s.on_gpu and k not in BUILDERS]
    if missing:
        raise SystemExit(f"no builder for {', '.join(missing)}: add one to bench/model_sizes.py")
    rows = []
    for key in (k for k, s in ARCHITECTURES.items() if s.on_gpu):
        with quiet():
            rows.append(BUILDERS[key](key))
    return rows


def commit(sdscripts: Path) -> str:
    """The checkout's commit ("unknown" when it is not a git checkout)."""
    git = ["git", "-C", str(sdscripts), "rev-parse", "HEAD"]
    return subprocess.run(git, capture_output=True, text=True).stdout.strip() or "unknown"


def table(rows: list[Sizes]) -> str:
    """Markdown: one row per architecture, then one per text encoder."""
    out = [
        "| architecture | base (params + buffers) | blocks (mean params) | VAE / AE "
        "| LoRA per rank, base |",
        "|---|---:|---|---:|---:|",
    ]
    for s in rows:
        blocks = ", ".join(f"{n} {k} ({s.block_params[k]:,})" for k, n in s.blocks.items())
        base = f"{s.base_params:,}" + (f" + {s.base_buffers:,}" if s.base_buffers else "")
        out.append(f"| {s.key} | {base} | {blocks} | {s.vae_params:,} | {s.lora_per_rank:,} |")
    out += [
        "",
        "| architecture | text encoder | params (embeddings) | layers x width "
        "| LoRA per rank | LoRA by default |",
        "|---|---|---:|---|---:|---|",
    ]
    for s in rows:
        for t in s.text_encoders:
            out.append(
                f"| {s.key} | {t.name} | {t.params:,} ({t.embedding_params:,}) "
                f"| {t.layers} x {t.hidden} | {t.lora_per_rank:,} "
                f"| {'yes' if t.lora_by_default else 'no'} |"
            )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdscripts", type=Path, required=True, help="an sd-scripts checkout")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args()
    rows = measure(args.sdscripts.resolve())
    rev = commit(args.sdscripts)
    if args.json:
        print(
            json.dumps(
                {"sd_scripts_commit": rev, "architectures": [asdict(r) for r in rows]}, indent=2
            )
        )
    else:
        print(f"sd-scripts {rev}\n")
        print(table(rows))


if __name__ == "__main__":
    main()
