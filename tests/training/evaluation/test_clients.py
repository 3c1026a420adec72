"""ComfyUI's and SwarmUI's API as the evaluation uses it, against the fakes that follow it:
queueing, history, pictures, errors, the folder listing, the progress socket."""

import io

import pytest
from PIL import Image

from sdscripts.architectures import ARCHITECTURES
from tests.training.evaluation.conftest import LORA_FINAL, NOT_A_LORA
from training.evaluation import workflow
from training.evaluation.clients import ComfyUI, InferenceError, SwarmUI
from training.evaluation.render import BASE_STRENGTH


def sd15_workflow(lora: str, *, strength: float = 1.0, seed: int = 1, ckpt=None) -> dict:
    values = {
        "checkpoint": ckpt or "sd15/sd15_random.safetensors",
        "lora": lora,
        "strength": strength,
        "seed": seed,
        "prompt": "a sks dog",
        "negative": "",
        "width": 64,
        "height": 64,
        "steps": 3,
        "cfg": 7.0,
        "sampler": "euler",
        "scheduler": "normal",
    }
    return workflow.fill(workflow.load(ARCHITECTURES["sd15"]), values)


def render(client: ComfyUI, wf: dict, **kw) -> bytes:
    prompt_id = client.queue(wf)
    return client.picture(client.wait(prompt_id, timeout=10, **kw))


def test_lists_the_lora_folder_and_sees_a_file_copied_in_later(comfy, folders):
    client = ComfyUI(comfy.url)
    assert client.options("LoraLoader", "lora_name") == []
    (folders[1] / "sub").mkdir()
    (folders[1] / "sub" / "a.safetensors").write_bytes(LORA_FINAL)
    assert client.options("LoraLoader", "lora_name") == ["sub/a.safetensors"]
    assert client.options("CheckpointLoaderSimple", "ckpt_name") == ["sd15/sd15_random.safetensors"]
    assert client.options("TripleCLIPLoader", "clip_name1") == ["sd15/sd15_random.safetensors"]


def test_unknown_node_is_a_workflow_error(comfy):
    with pytest.raises(InferenceError, match="does not know the node NoSuchNode") as info:
        ComfyUI(comfy.url).options("NoSuchNode", "x")
    assert info.value.reason == "workflow_error"


def test_queue_history_and_view_give_a_deterministic_picture(comfy, folders):
    (folders[1] / "a.safetensors").write_bytes(LORA_FINAL)
    client = ComfyUI(comfy.url)
    client.check()
    first = render(client, sd15_workflow("a.safetensors"))
    assert Image.open(io.BytesIO(first)).size == (64, 64)
    assert render(client, sd15_workflow("a.safetensors")) == first  # same seed, same bytes
    assert render(client, sd15_workflow("a.safetensors", seed=2)) != first
    # The base model: at exactly 0 the server renders the weights the last LoRA left (as a
    # real ComfyUI did); at BASE_STRENGTH it restores them first.
    assert render(client, sd15_workflow("a.safetensors", strength=0, seed=1)) == first
    base = render(client, sd15_workflow("a.safetensors", strength=BASE_STRENGTH))
    assert base != first
    comfy.patched = None  # a server that has rendered no LoRA yet
    assert render(client, sd15_workflow("a.safetensors", strength=0, seed=1)) == base
    paths = [p for m, p in comfy.calls]
    assert "/prompt" in paths and any(p.startswith("/history/") for p in paths)
    assert "/view" in paths


def test_history_is_empty_until_the_prompt_ran(comfy, folders):
    (folders[1] / "a.safetensors").write_bytes(LORA_FINAL)
    comfy.hang = True
    client = ComfyUI(comfy.url)
    prompt_id = client.queue(sd15_workflow("a.safetensors"))
    assert client.history(prompt_id) is None
    with pytest.raises(TimeoutError):
        client.wait(prompt_id, timeout=0.3)


def test_a_name_it_does_not_list_is_refused_with_the_node_and_input(comfy):
    with pytest.raises(InferenceError) as info:
        ComfyUI(comfy.url).queue(sd15_workflow("gone.safetensors"))
    assert info.value.reason == "workflow_error"
    assert "node 2 (LoraLoader): lora_name: 'gone.safetensors' not in []" in info.value.message


@pytest.mark.parametrize("upstream", [False, True], ids=["fork-strings", "upstream-pairs"])
def test_a_corrupt_lora_passes_validation_and_fails_in_execution(comfy, folders, upstream):
    comfy.upstream_messages = upstream
    (folders[1] / "bad.safetensors").write_bytes(NOT_A_LORA)
    with pytest.raises(InferenceError, match="deserializing header") as info:
        render(ComfyUI(comfy.url), sd15_workflow("bad.safetensors"))
    assert info.value.reason == "workflow_error"


def test_the_progress_socket_reports_sampler_steps(comfy, folders):
    (folders[1] / "a.safetensors").write_bytes(LORA_FINAL)
    comfy.delay = 0.6  # steps come after the first look at /history
    client = ComfyUI(comfy.url)
    steps = []
    with client.progress_socket() as socket:
        assert socket is not None
        render(
            client,
            sd15_workflow("a.safetensors"),
            socket=socket,
            on_step=lambda v, m: steps.append((v, m)),
        )
    assert steps == [(1, 3), (2, 3), (3, 3)]


def test_a_server_that_does_not_answer_is_server_down():
    with pytest.raises(InferenceError, match="does not answer") as info:
        ComfyUI("http://127.0.0.1:9", timeout=0.5).check()
    assert info.value.reason == "server_down"
    with ComfyUI("http://127.0.0.1:9").progress_socket() as socket:
        assert socket is None  # waiting still works, by /history alone


def test_swarmui_lists_models_and_renders_with_its_lora_parameters(swarm, folders):
    (folders[1] / "a.safetensors").write_bytes(LORA_FINAL)
    client = SwarmUI(swarm.url)
    client.check()
    assert client.models("LoRA") == ["a.safetensors"]
    params = {"prompt": "a dog", "negativeprompt": "", "model": "sd15/sd15_random.safetensors",
              "width": 64, "height": 64, "steps": 3, "cfgscale": 7, "seed": 1}  # fmt: skip
    with_lora = client.generate({**params, "loras": "a.safetensors", "loraweights": "1"}, timeout=5)
    assert Image.open(io.BytesIO(with_lora)).size == (64, 64)
    assert client.generate(params, timeout=5) != with_lora
    routes = [route for route, _ in swarm.calls]
    assert routes[0] == "GetNewSession" and "GenerateText2Image" in routes
    with pytest.raises(InferenceError, match="Invalid LoRA"):
        client.generate({**params, "loras": "gone.safetensors", "loraweights": "1"}, timeout=5)
