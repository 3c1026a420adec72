"""The evaluation workflows: one per architecture of the registry, core nodes only, filled
with names as the server lists them."""

import json

import pytest

from sdscripts.architectures import ARCHITECTURES
from training.evaluation import workflow
from training.evaluation.workflow import (
    CORE_NODES,
    IMAGE_PLACEHOLDERS,
    MODEL_PLACEHOLDERS,
    NameNotListed,
    WorkflowError,
)

EVALUATED = [a for a in ARCHITECTURES.values() if a.inference is not None]


def test_every_trainable_architecture_has_a_workflow_and_the_demo_none():
    assert {a.key for a in ARCHITECTURES.values() if a.on_gpu} == {a.key for a in EVALUATED}
    with pytest.raises(WorkflowError):
        workflow.load(ARCHITECTURES["demo"])


@pytest.mark.parametrize("arch", EVALUATED, ids=lambda a: a.key)
def test_workflow_uses_core_nodes_and_known_placeholders_only(arch):
    wf = workflow.load(arch)
    assert {n["class_type"] for n in wf.values()} <= CORE_NODES
    names = workflow.placeholders(wf)
    assert names <= set(MODEL_PLACEHOLDERS) | set(IMAGE_PLACEHOLDERS)
    models = set(workflow.model_inputs(wf))
    # Every model file it loads is one the architecture's base model holds, and the LoRA.
    assert models - {"lora"} <= set(arch.files) and "lora" in models
    assert set(IMAGE_PLACEHOLDERS) <= names  # each picture sets all of them
    # Links point at existing nodes; exactly one picture comes out.
    for node in wf.values():
        for value in node["inputs"].values():
            if isinstance(value, list):
                assert value[0] in wf
    assert len(workflow.output_nodes(wf)) == 1


@pytest.mark.parametrize("arch", EVALUATED, ids=lambda a: a.key)
def test_fill_replaces_every_placeholder_and_keeps_types(arch):
    wf = workflow.load(arch)
    values = {name: f"{name}.safetensors" for name in MODEL_PLACEHOLDERS}
    values |= {"prompt": "a $seed dog", "negative": "", "seed": 7, "strength": 0.8}
    values |= {"width": 64, "height": 64, "steps": 3, "cfg": 7.0, "sampler": "euler"}
    values |= {"scheduler": "normal"}
    filled = workflow.fill(wf, values)
    assert not workflow.placeholders(filled)
    text = json.dumps(filled)
    assert '"seed": 7' in text and '"strength_model": 0.8' in text
    assert "a $seed dog" in text  # a value is never read as a placeholder
    assert workflow.placeholders(wf)  # the template itself is unchanged


def test_fill_names_a_missing_value():
    wf = workflow.load(ARCHITECTURES["sd15"])
    with pytest.raises(WorkflowError, match=r"needs \$checkpoint"):
        workflow.fill(wf, {})


def test_listed_options_reads_both_shapes_comfyui_answers():
    info = {
        "LoraLoader": {"input": {"required": {"lora_name": [["a.safetensors"], {"tooltip": "x"}]}}},
        "TripleCLIPLoader": {
            "input": {"required": {"clip_name1": ["COMBO", {"options": ["clip_l.safetensors"]}]}}
        },
        "UNETLoader": {"input": {"required": {"unet_name": [[]]}}},
    }
    assert workflow.listed_options(info, "LoraLoader", "lora_name") == ["a.safetensors"]
    assert workflow.listed_options(info, "TripleCLIPLoader", "clip_name1") == ["clip_l.safetensors"]
    assert workflow.listed_options(info, "UNETLoader", "unet_name") == []
    assert workflow.listed_options({}, "LoraLoader", "lora_name") == []


def test_match_name_takes_the_listed_name_with_the_most_folders_in_common():
    names = ["other/model.safetensors", "sd15/model.safetensors", "x.safetensors"]
    assert workflow.match_name("/srv/models/sd15/model.safetensors", names, what="c") == (
        "sd15/model.safetensors"
    )
    # SwarmUI may list names without the extension.
    assert workflow.match_name("/m/x.safetensors", ["x"], what="c") == "x"


def test_match_name_refuses_a_missing_or_ambiguous_file():
    with pytest.raises(NameNotListed, match="not among the 1 files"):
        workflow.match_name("/m/missing.safetensors", ["x.safetensors"], what="checkpoint")
    with pytest.raises(NameNotListed, match="more than once"):
        workflow.match_name("/m/x.safetensors", ["a/x.safetensors", "b/x.safetensors"], what="c")
