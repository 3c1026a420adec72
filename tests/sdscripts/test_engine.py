"""What check_node asks a node's sd-scripts and the probe's parameters (pure)."""

import json

import pytest

from sdscripts import engine
from sdscripts.architectures import ARCHITECTURES, spec
from sdscripts.command import MANAGED_FLAGS
from sdscripts.params import OPTIMIZER_MODULES, OPTIMIZERS

GPU_KEYS = [k for k, s in ARCHITECTURES.items() if s.on_gpu]


def test_every_optimizer_names_its_module():
    assert set(OPTIMIZER_MODULES) == set(OPTIMIZERS)
    assert engine.optional_modules() == (
        "bitsandbytes", "dadaptation", "lion_pytorch", "prodigyopt", "schedulefree",
        "transformers",
    )  # fmt: skip
    assert engine.optimizers_needing("bitsandbytes") == ("AdamW8bit", "PagedAdamW8bit", "Lion8bit")
    assert engine.optimizers_needing("dadaptation") == ("DAdaptAdam",)


def test_answers_are_read_from_marked_lines_only():
    stdout = "\n".join(
        [
            "2026-11-29 INFO     Using v1 tokenizer",
            engine.MARK + json.dumps({"name": "a", "error": ""}),
            engine.MARK + json.dumps({"name": "b", "error": "OSError:\n  no\tway"}),
            engine.MARK + "{not json",
            "{" + '"name": "c", "error": ""}',
        ]
    )
    assert engine.parse_answers(stdout) == {"a": "", "b": "OSError: no way"}


def test_a_tokenizer_request_holds_each_strategy_once():
    request = json.loads(engine.tokenizer_request(["flux1_dev", "chroma", "sd15", "demo"], "/t"))
    assert [item["name"] for item in request] == [
        "library.strategy_flux.FluxTokenizeStrategy",
        "library.strategy_sd.SdTokenizeStrategy",
    ]
    assert request[1] == {
        "name": "library.strategy_sd.SdTokenizeStrategy",
        "module": "library.strategy_sd",
        "strategy": "SdTokenizeStrategy",
        "args": [False, None],
        "cache": "/t",
    }


def test_missing_from_cache_follows_the_cache_layout():
    sdxl, lumina = spec("sdxl").tokenizers, spec("lumina2").tokenizers
    present = ["openai_clip-vit-large-patch14", "models--google--gemma-2-2b"]
    assert engine.missing_from_cache(sdxl, present) == ("laion/CLIP-ViT-bigG-14-laion2B-39B-b160k",)
    assert engine.missing_from_cache(lumina, present) == ()
    assert engine.missing_from_cache(lumina, ["google_gemma-2-2b"]) == ("google/gemma-2-2b",)


@pytest.mark.parametrize(
    ("env", "offline"),
    [({}, False), ({"HF_HUB_OFFLINE": "1"}, True), ({"HF_HUB_OFFLINE": "0"}, False),
     ({"HF_HUB_OFFLINE": "True"}, True)],
)  # fmt: skip
def test_offline_env(env, offline):
    assert engine.offline_env(env) is offline


@pytest.mark.parametrize("key", GPU_KEYS)
@pytest.mark.parametrize("cpu", [False, True])
def test_the_probe_trains_one_tiny_step_without_samples(key, cpu):
    params = engine.probe_params(key, cpu=cpu)
    assert params["resolution"] == 64 and params["max_train_steps"] == 1
    assert params["sample_every_n_epochs"] == 0 and params["optimizer_type"] == "AdamW"
    assert (params["mixed_precision"] == "no") is cpu
    assert not set(engine.PROBE_VALUES) - set(params)
    assert set(engine.PROBE_VALUES) <= MANAGED_FLAGS  # knobs, never raw flags


def test_the_probe_prefers_the_smallest_model():
    sizes = {key: engine.probe_estimate_mib(key) for key in GPU_KEYS}
    assert min(sizes, key=sizes.get) == "sd15"
    assert sizes["sdxl"] < sizes["flux1_dev"]
