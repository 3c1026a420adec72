"""Detection of sd-scripts, ComfyUI, SwarmUI and model files from a folder listing (pure)."""

import pytest

from training.nodes.detect import (
    BaseModelProposal,
    HubCache,
    SdScripts,
    SwarmUI,
    classify_name,
    detect,
    find_comfyui,
    find_hub_cache,
    find_model_files,
    find_sdscripts,
    find_swarmui,
)


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("sd3.5_large.safetensors", ("checkpoint", "sd35_large")),
        ("sd3.5_large_turbo.safetensors", ("checkpoint", "sd35_large")),
        ("stable-diffusion-3.5-large.safetensors", ("checkpoint", "sd35_large")),
        ("sd3.5_medium.safetensors", ("checkpoint", "sd35_medium")),
        ("sd_xl_base_1.0.safetensors", ("checkpoint", "sdxl")),
        ("juggernautXL_v9.safetensors", ("checkpoint", "sdxl")),
        ("v1-5-pruned-emaonly.safetensors", ("checkpoint", "sd15")),
        ("sd-v1-5.ckpt", ("checkpoint", "sd15")),
        ("flux1-dev.safetensors", ("checkpoint", "flux1_dev")),
        ("flux1-dev-fp8.safetensors", ("checkpoint", "flux1_dev")),
        ("flux1-schnell.sft", ("checkpoint", "flux1_schnell")),
        ("clip_l.safetensors", ("clip_l", "")),
        ("clip_g.safetensors", ("clip_g", "")),
        ("t5xxl_fp16.safetensors", ("t5xxl", "")),
        ("t5xxl_fp8_e4m3fn.safetensors", ("t5xxl", "")),
        ("ae.safetensors", ("ae", "")),
        ("sdxl_vae.safetensors", ("vae", "sdxl")),
        ("vae-ft-mse-840000-ema-pruned.safetensors", ("vae", "sd15")),
        ("chroma-unlocked-v50.safetensors", ("checkpoint", "chroma")),
        ("Chroma1-HD.safetensors", ("checkpoint", "chroma")),
        ("lumina_2_model_bf16.safetensors", ("checkpoint", "lumina2")),
        ("gemma_2_2b_fp16.safetensors", ("gemma2", "")),
        ("dreamshaper_8.safetensors", None),
        ("sd3.5_large.txt", None),
        ("README.md", None),
    ],
)
def test_classify_name(filename, expected):
    assert classify_name(filename) == expected


@pytest.mark.parametrize(
    ("listing", "expected"),
    [
        (
            ["sd-scripts/sd3_train_network.py", "sd-scripts/venv/bin/python"],
            (SdScripts("sd-scripts", "sd-scripts/venv/bin/python"),),
        ),
        (
            ["ai/kohya/sd3_train_network.py", "ai/kohya/.venv/bin/python3"],
            (SdScripts("ai/kohya", "ai/kohya/.venv/bin/python3"),),
        ),
        (["sd-scripts/sd3_train_network.py"], (SdScripts("sd-scripts", ""),)),
        (["sd-scripts/train_network.py", "sd-scripts/venv/bin/python"], ()),
    ],
)
def test_find_sdscripts(listing, expected):
    assert find_sdscripts(listing) == expected


@pytest.mark.parametrize(
    ("listing", "expected"),
    [
        (["ComfyUI/main.py", "ComfyUI/comfy/"], ("ComfyUI",)),
        (["ComfyUI/main.py"], ()),
        (["project/main.py", "other/comfy/"], ()),
    ],
)
def test_find_comfyui(listing, expected):
    assert find_comfyui(listing) == expected


@pytest.mark.parametrize(
    ("listing", "expected"),
    [
        (
            ["SwarmUI/Models/", "SwarmUI/Models/Stable-Diffusion/"],
            (SwarmUI("SwarmUI", "SwarmUI/Models", "SwarmUI/Models/Lora"),),
        ),
        (["Models/", "Models/Lora/"], (SwarmUI("", "Models", "Models/Lora"),)),
        (["ComfyUI/models/", "ComfyUI/models/checkpoints/"], ()),
        (["Stuff/Models/", "Stuff/Models/cars/"], ()),
    ],
)
def test_find_swarmui(listing, expected):
    assert find_swarmui(listing) == expected


def test_model_files_only_count_under_model_folders():
    listing = [
        "Downloads/sd3.5_large.safetensors",
        "SwarmUI/Models/Stable-Diffusion/OfficialStableDiffusion/sd3.5_large.safetensors",
        "ComfyUI/models/text_encoders/t5xxl_fp16.safetensors",
        "ComfyUI/models/vae/ae.safetensors",
        "ComfyUI/models/loras/flux1-dev-style.safetensors",
    ]
    assert [(f.path, f.kind) for f in find_model_files(listing)] == [
        ("ComfyUI/models/text_encoders/t5xxl_fp16.safetensors", "t5xxl"),
        ("ComfyUI/models/vae/ae.safetensors", "ae"),
        (
            "SwarmUI/Models/Stable-Diffusion/OfficialStableDiffusion/sd3.5_large.safetensors",
            "checkpoint",
        ),
    ]


def test_proposals_attach_encoders_and_name_what_is_missing():
    listing = [
        "SwarmUI/Models/Stable-Diffusion/sd3.5_large.safetensors",
        "SwarmUI/Models/Stable-Diffusion/flux1-dev.safetensors",
        "SwarmUI/Models/Stable-Diffusion/sd_xl_base_1.0.safetensors",
        "SwarmUI/Models/clip/clip_l.safetensors",
        "SwarmUI/Models/clip/clip_g.safetensors",
        "SwarmUI/Models/clip/t5xxl_fp8_e4m3fn.safetensors",
        "SwarmUI/Models/clip/t5xxl_fp16.safetensors",
    ]
    by_name = {p.name: p for p in detect(listing).base_models}
    assert by_name["sd3.5_large"] == BaseModelProposal(
        name="sd3.5_large",
        architecture="sd35_large",
        files={
            "checkpoint": "SwarmUI/Models/Stable-Diffusion/sd3.5_large.safetensors",
            "clip_l": "SwarmUI/Models/clip/clip_l.safetensors",
            "clip_g": "SwarmUI/Models/clip/clip_g.safetensors",
            "t5xxl": "SwarmUI/Models/clip/t5xxl_fp16.safetensors",
        },
    )
    assert by_name["flux1-dev"].missing == ("ae",)
    assert by_name["sd_xl_base_1.0"].architecture == "sdxl"
    assert by_name["sd_xl_base_1.0"].missing == ()


def test_encoder_from_the_same_install_is_preferred():
    listing = [
        "ComfyUI/models/checkpoints/sd3.5_medium.safetensors",
        "ComfyUI/models/clip/clip_l.safetensors",
        "ComfyUI/models/clip/clip_g.safetensors",
        "ComfyUI/models/clip/t5xxl_fp16.safetensors",
        "A/Models/clip/clip_l.safetensors",
    ]
    (proposal,) = detect(listing).base_models
    assert proposal.files["clip_l"] == "ComfyUI/models/clip/clip_l.safetensors"
    assert proposal.missing == ()


def test_lumina_and_chroma_proposals_take_the_encoders_their_architecture_needs():
    listing = [
        "ComfyUI/models/diffusion_models/lumina_2_model_bf16.safetensors",
        "ComfyUI/models/diffusion_models/chroma-unlocked-v50.safetensors",
        "ComfyUI/models/text_encoders/gemma_2_2b_fp16.safetensors",
        "ComfyUI/models/text_encoders/t5xxl_fp16.safetensors",
        "ComfyUI/models/text_encoders/clip_l.safetensors",
        "ComfyUI/models/vae/ae.safetensors",
    ]
    by_arch = {p.architecture: p for p in detect(listing).base_models}
    assert by_arch["lumina2"].files == {
        "checkpoint": "ComfyUI/models/diffusion_models/lumina_2_model_bf16.safetensors",
        "gemma2": "ComfyUI/models/text_encoders/gemma_2_2b_fp16.safetensors",
        "ae": "ComfyUI/models/vae/ae.safetensors",
    }
    assert set(by_arch["chroma"].files) == {"checkpoint", "t5xxl", "ae"}  # no CLIP-L
    assert by_arch["chroma"].missing == by_arch["lumina2"].missing == ()


def test_a_hub_cache_counts_when_it_holds_a_tokenizer_sd_scripts_loads():
    caches = {
        "/env/hf/hub": ["models--bert-base-uncased"],
        "/home/ann/.cache/huggingface/hub": [
            "models--openai--clip-vit-large-patch14",
            "models--google--t5-v1_1-xxl",
        ],
    }
    found = find_hub_cache(caches)
    assert found == HubCache(
        hf_home="/home/ann/.cache/huggingface",
        tokenizers=("google/t5-v1_1-xxl", "openai/clip-vit-large-patch14"),
    )
    caches["/env/hf/hub"].append("models--openai--clip-vit-large-patch14")
    assert find_hub_cache(caches).hf_home == "/env/hf"  # the caller's order: $HF_HOME first
    assert find_hub_cache({"/x/hub": ["models--bert-base-uncased"]}) is None
    assert find_hub_cache({}) is None
