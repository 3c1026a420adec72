"""check_node's questions about evaluations: does the inference server list the LoRA folder
evaluations copy files into, and can the stop/start commands be found."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from sdscripts.command import command_text
from training.choices import ComfyUnloadMode
from training.evaluation.clients import ComfyUI, InferenceError, SwarmUI
from training.evaluation.render import STAGE_FOLDER
from training.nodes.report import FAIL, OK, WARN, Check

# The smallest safetensors file: an 8-byte header length, then "{}" padded.
PROBE_FILE = b"\x08\x00\x00\x00\x00\x00\x00\x00{}      "
FIX_FOLDER = (
    "register_node --inference-lora-dir DIR with a folder the server lists LoRAs from "
    "(ComfyUI: models/loras or a folder of extra_model_paths.yaml; SwarmUI: Models/Lora)"
)


def check_lora_folder(node) -> Check:
    """Copy a tiny file into the evaluation folder and look for it in the server's list."""
    folder = node.evaluation_lora_dir
    if not folder:
        return Check("evaluation LoRA folder", WARN, "not set", FIX_FOLDER)
    name = f"lorastudio-check-{secrets.token_hex(4)}.safetensors"
    path = Path(folder) / STAGE_FOLDER / name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(PROBE_FILE)
    except OSError as exc:
        return Check("evaluation LoRA folder", FAIL, f"{path.parent}: {exc}", FIX_FOLDER)
    try:
        if node.comfyui_url:
            server, listed = "ComfyUI", ComfyUI(node.comfyui_url).options("LoraLoader", "lora_name")
        else:
            client = SwarmUI(node.swarmui_url)
            client.check()
            client.refresh()
            server, listed = "SwarmUI", client.models("LoRA")
    except InferenceError as exc:
        return Check("evaluation LoRA folder", WARN, f"not checked: {exc.message}", "")
    finally:
        path.unlink(missing_ok=True)
    stem = f"{STAGE_FOLDER}/{name.removesuffix('.safetensors')}"
    if any(n.replace("\\", "/").removesuffix(".safetensors").endswith(stem) for n in listed):
        return Check("evaluation LoRA folder", OK, f"{server} lists {path.parent}")
    return Check(
        "evaluation LoRA folder",
        FAIL,
        f"{server} does not list files copied to {path.parent}: evaluations would fail",
        FIX_FOLDER,
    )


def check_commands(node) -> list[Check]:
    """In mode "stop": both commands are set and their programs exist."""
    if node.comfyui_unload != ComfyUnloadMode.STOP:
        return []
    checks = []
    for label, argv in (
        ("stop command", node.inference_stop_command),
        ("start command", node.inference_start_command),
    ):
        if not argv:
            checks.append(
                Check(label, FAIL, "not set", f"register_node --{label.replace(' ', '-')}")
            )
        elif shutil.which(argv[0]) is None:
            checks.append(Check(label, FAIL, f"{argv[0]} is not found", "give its full path"))
        else:
            checks.append(Check(label, OK, command_text(argv)))
    return checks


def check_inference(node) -> list[Check]:
    """Everything evaluations and the stop/start mode need on this node."""
    checks = check_commands(node)
    if node.has_inference_server:
        checks.append(check_lora_folder(node))
    return checks
