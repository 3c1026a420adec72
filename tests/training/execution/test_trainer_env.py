"""What a trainer inherits from its worker: an allow-list, never the app's secrets."""

import json
import os
import sys

import pytest

from training.execution.process import TrainerProcess, trainer_environment

WORKER_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/home/lab",
    "USER": "lab",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "TMPDIR": "/scratch/tmp",
    "LD_LIBRARY_PATH": "/usr/local/cuda/lib64",
    "CUDA_HOME": "/usr/local/cuda",
    "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
    "HF_HOME": "/models/hf",
    "HF_TOKEN": "hf_for_gated_models",
    "TRANSFORMERS_OFFLINE": "1",
    "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
    "PYTHONIOENCODING": "utf-8",
    "HTTPS_PROXY": "http://proxy.campus:3128",
    "DEMO_TRAINER_STEP_DELAY": "0.1",
    # The worker's own: never the trainer's.
    "SECRET_KEY": "worker-secret",
    "DATABASE_URL": "postgres://u:p@db/lorastudio",
    "REDIS_URL": "redis://:p@redis:6379/0",
    "DJANGO_SUPERUSER_PASSWORD": "pw",
    "DJANGO_SETTINGS_MODULE": "lorastudio.settings",
    "LORASTUDIO_ENV_FILE": "/etc/lorastudio/lorastudio.env",
    "PGPASSWORD": "p",
    "AWS_SECRET_ACCESS_KEY": "k",
    "PYTHONPATH": "/opt/lorastudio",
    "PYTHONHOME": "/opt/python",
    "VIRTUAL_ENV": "/opt/lorastudio/.venv",
    "WANDB_API_KEY": "w",
}
PASSED = {
    "PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "LD_LIBRARY_PATH", "CUDA_HOME",
    "NVIDIA_DRIVER_CAPABILITIES", "HF_HOME", "HF_TOKEN", "TRANSFORMERS_OFFLINE",
    "PYTORCH_CUDA_ALLOC_CONF", "PYTHONIOENCODING", "HTTPS_PROXY", "DEMO_TRAINER_STEP_DELAY",
}  # fmt: skip


def test_only_the_allow_list_of_the_workers_environment_is_inherited():
    env = trainer_environment(WORKER_ENV, {"PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": "1"})
    assert set(env) == PASSED | {"PYTHONUNBUFFERED", "CUDA_VISIBLE_DEVICES"}
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["HF_HOME"] == "/models/hf"


def test_an_operators_additions_pass_but_never_the_apps_secrets():
    inherit = ["WANDB_*", "AWS_SECRET_ACCESS_KEY", "SECRET_KEY", "DATABASE_URL", "DJANGO_*"]
    env = trainer_environment(WORKER_ENV, {}, inherit)
    assert env["WANDB_API_KEY"] == "w" and env["AWS_SECRET_ACCESS_KEY"] == "k"
    for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"):
        assert name not in env


def test_the_commands_own_variables_win():
    env = trainer_environment({"CUDA_VISIBLE_DEVICES": "0,1", "PATH": "/bin"}, {
        "CUDA_VISIBLE_DEVICES": "1"
    })  # fmt: skip
    assert env == {"CUDA_VISIBLE_DEVICES": "1", "PATH": "/bin"}


@pytest.mark.slow
def test_a_real_trainer_process_does_not_receive_the_secrets(tmp_path, monkeypatch):
    for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DJANGO_SUPERUSER_PASSWORD"):
        monkeypatch.setenv(name, f"{name.lower()}-value-of-the-worker")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    code = "import json, os; print(json.dumps(dict(os.environ)))"
    trainer = TrainerProcess(
        [sys.executable, "-c", code], cwd=str(tmp_path), command_env={"CUDA_VISIBLE_DEVICES": "0"}
    )
    out = ""
    while not trainer.finished():
        for name, text in trainer.output(timeout=0.1):
            if text is None:
                trainer.done(name)
            elif name == "stdout":
                out += text
    assert trainer.wait() == 0
    child = json.loads(out)
    assert child["CUDA_VISIBLE_DEVICES"] == "0"
    assert child["HF_HOME"] == str(tmp_path / "hf") and child["PATH"] == os.environ["PATH"]
    for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DJANGO_SUPERUSER_PASSWORD"):
        assert name not in child
    assert not any("value-of-the-worker" in value for value in child.values())
