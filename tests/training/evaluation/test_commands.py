"""`manage.py evaluate`, and the inference settings of `register_node` and `train`."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django_q.conf import Conf

from training.models import Evaluation, GPUNode


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x"], "run_id: 'x' is not a run number"),
        (["999"], "run_id: there is no run #999"),
        (["{run}", "--strengths", "0,a"], "strengths: 'a' is not a number"),
        (["{run}", "--seeds", "-3"], "seeds: '-3' is not a seed"),
        (["{run}", "--epochs", "5"], "epochs: the run has no LoRA file of epoch 5"),
        (["{run}", *["--prompt", "p"] * 5], "prompts: at most 4 prompts"),
    ],
)
def test_bad_arguments_say_why_and_change_nothing(finished_run, args, message):
    args = [a.replace("{run}", str(finished_run.pk)) for a in args]
    with pytest.raises(CommandError, match=message):
        run("evaluate", *args)
    assert not Evaluation.objects.exists()


def test_a_refused_plan_lists_its_reasons(finished_run, inference_node):
    inference_node.comfyui_url = ""
    inference_node.save()
    with pytest.raises(CommandError, match="Not evaluated: no node has ComfyUI or SwarmUI"):
        run("evaluate", str(finished_run.pk))


def test_queues_it(finished_run):
    out = run("evaluate", str(finished_run.pk), "--epochs", "1,2", "--strengths", "0,1",
              "--seeds", "4", "--prompt", "a sks dog", "--prompt", "a sks hat")  # fmt: skip
    evaluation = Evaluation.objects.get()
    assert f"Evaluation #{evaluation.pk} of run #{finished_run.pk} is queued: 6 images." in out
    assert evaluation.prompts == ["a sks dog", "a sks hat"] and evaluation.seeds == [4]


@pytest.mark.django_db(transaction=True)
def test_wait_follows_it_and_exits_0_when_it_succeeded(finished_run, monkeypatch):
    # The node's cluster, inline: django-q2 runs a task where it is sent (sync).
    monkeypatch.setattr(Conf, "SYNC", True)
    out = run("evaluate", str(finished_run.pk), "--epochs", "last", "--wait")
    evaluation = Evaluation.objects.get()
    # 2 prompts × 2 seeds × (the base + strengths 0.5, 0.8, 1).
    assert f"Evaluation #{evaluation.pk} succeeded: 16/16 images" in out


@pytest.mark.django_db(transaction=True)
def test_wait_exits_non_zero_when_it_failed(finished_run, inference_node, monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", True)
    inference_node.comfyui_url = "http://127.0.0.1:9"
    inference_node.save()
    with pytest.raises(CommandError, match=r"ended failed \(server_down\): ComfyUI at"):
        run("evaluate", str(finished_run.pk), "--wait")


@pytest.mark.django_db
def test_register_node_sets_the_inference_settings(tmp_path):
    out = run(
        "register_node", "--name", "gpu-b", "--comfyui-url", "http://127.0.0.1:8188",
        "--comfyui-lora-dir", str(tmp_path / "loras"), "--unload", "stop",
        "--stop-command", "systemctl --user stop 'comfy ui'",
        "--start-command", "systemctl --user start 'comfy ui'",
        "--start-timeout", "60", "--inference-gpu", "1",
    )  # fmt: skip
    node = GPUNode.objects.get(name="gpu-b")
    assert node.inference_lora_dir == str(tmp_path / "loras")
    assert node.inference_stop_command == ["systemctl", "--user", "stop", "comfy ui"]
    assert node.inference_start_command == ["systemctl", "--user", "start", "comfy ui"]
    assert (node.comfyui_unload, node.inference_start_timeout, node.inference_gpu) == (
        "stop",
        60,
        1,
    )
    assert "Registered node gpu-b" in out


@pytest.mark.django_db
def test_register_node_refuses_stop_mode_without_commands():
    with pytest.raises(CommandError, match="inference_stop_command: Stopping the server"):
        run("register_node", "--name", "gpu-c", "--comfyui-url", "http://x:1", "--unload", "stop")
    with pytest.raises(CommandError, match="stop-command: No closing quotation"):
        run("register_node", "--name", "gpu-c", "--stop-command", "systemctl 'stop")
    assert not GPUNode.objects.filter(name="gpu-c").exists()


@pytest.mark.django_db
def test_check_node_says_whether_the_server_lists_the_evaluation_folder(
    inference_node, comfy, tmp_path
):
    from training.nodes.check import check_node

    def line(name):
        return next(c for c in check_node(inference_node) if c.name == name)

    assert line("evaluation LoRA folder").state == "ok"
    assert not list((tmp_path / "comfy" / "loras" / "lorastudio-eval").glob("*"))  # cleaned
    inference_node.inference_lora_dir = str(tmp_path / "elsewhere")
    check = line("evaluation LoRA folder")
    assert check.state == "fail" and "does not list files copied to" in check.detail
    assert "--inference-lora-dir" in check.fix
    inference_node.comfyui_unload = "stop"
    inference_node.inference_stop_command = ["no-such-program-here", "stop"]
    assert line("stop command").detail == "no-such-program-here is not found"
    assert line("start command").detail == "not set"
