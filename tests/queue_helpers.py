"""Helpers shared by the queue tests: a small captioned dataset and a demo run on a node."""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from PIL import Image

from datasets.services import add_images, create_dataset, save_captions
from tests.factories import make_base_model, make_gpu, make_node
from tests.paths import FAKE_TRAINERS, FIXTURES
from training import services


def png_bytes(seed: int, size: int = 64) -> bytes:
    """A small deterministic PNG (a coloured gradient)."""
    image = Image.new("RGB", (size, size))
    image.putdata(
        [
            ((x * 4 + seed * 40) % 256, (y * 4) % 256, (seed * 70) % 256)
            for y in range(size)
            for x in range(size)
        ]
    )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def make_image_dataset(owner, *, images: int = 4, name: str | None = None):
    """A dataset with a few generated, captioned images."""
    dataset = create_dataset(owner, name=name or f"shapes {owner.pk}", trigger_word="sks")
    add_images(dataset, [(f"img{i}.png", png_bytes(i)) for i in range(images)])
    captions = {img.pk: f"sks shape number {i}" for i, img in enumerate(dataset.images.all())}
    save_captions(dataset, captions)
    return dataset


DEMO_PARAMS = {"max_train_epochs": 2, "resolution": 32, "network_dim": 4}


def submit_demo(owner, *, node=None, dataset=None, params=None, **kw):
    """Submit a demo run (a node with a fresh heartbeat is created unless given)."""
    if node is None:
        node = make_node()
    base = kw.pop("base_model", None) or make_base_model(architecture="demo")
    return services.submit_run(
        owner,
        dataset=dataset or make_image_dataset(owner),
        base_model=base,
        params=dict(DEMO_PARAMS if params is None else params),
        **kw,
    )


def fake_sdscripts(folder: Path, trainer: str) -> Path:
    """A fake sd-scripts folder whose train_network.py is one of tests/fake_trainers."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(FAKE_TRAINERS / "_common.py", folder / "_common.py")
    shutil.copy(FAKE_TRAINERS / f"{trainer}.py", folder / "train_network.py")
    return folder


def submit_fake_sd15(
    owner, tmp_path: Path, trainer: str, *, params=None, sample_prompts="", **node_kw
):
    """An SD 1.5 run on a node with one fake 24 GB GPU whose sd-scripts is a fake trainer."""
    checkpoint = tmp_path / "models" / "sd15.safetensors"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.write_bytes(b"not really a model")
    node = make_node(
        sdscripts_dir=str(fake_sdscripts(tmp_path / f"sd-scripts-{trainer}", trainer)),
        sdscripts_python=sys.executable,
        **node_kw,
    )
    make_gpu(node=node, total_mib=24576)
    base = make_base_model(architecture="sd15", checkpoint=str(checkpoint))
    return services.submit_run(
        owner,
        dataset=make_image_dataset(owner),
        base_model=base,
        params={"max_train_epochs": 1, **(params or {})},
        sample_prompts=sample_prompts,
    )


def submit_replay(owner, tmp_path: Path, fixture: str, **kw):
    """An SD 1.5 run whose trainer replays the real sd-scripts capture `fixture`."""
    folder = tmp_path / "sd-scripts-replay"
    fake_sdscripts(folder, "replay")
    (folder / "replay_fixture.txt").write_text(str(FIXTURES / "sdscripts" / f"{fixture}.jsonl"))
    return submit_fake_sd15(owner, tmp_path, "replay", **kw)


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the database Django is connected to (the test database in tests)."""
    from urllib.parse import quote

    if settings_dict["ENGINE"].endswith("sqlite3"):
        return "sqlite:///" + str(settings_dict["NAME"])
    user = quote(settings_dict.get("USER") or "")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password)}@" if password else (f"{user}@" if user else "")
    host = quote(settings_dict.get("HOST") or "localhost", safe="")
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{quote(settings_dict['NAME'])}"


def cluster_env(node: str, *, fake_gpus: str = "", **extra: str) -> dict:
    """Environment for a qcluster/node process sharing this process's database and files."""
    from django.conf import settings
    from django.db import connection

    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(connection.settings_dict),
        LORASTUDIO_NODE=node,
        LORASTUDIO_GPU_BACKEND="fake",
        LORASTUDIO_FAKE_GPUS=fake_gpus,
        LORASTUDIO_MEDIA_DIR=str(settings.MEDIA_ROOT),
        LORASTUDIO_WORK_DIR=str(settings.LORASTUDIO_WORK_DIR),
        LORASTUDIO_Q_POLL="0.05",
        LORASTUDIO_Q_SYNC="False",
        LORASTUDIO_DB_PERSISTENT="True",  # as deploy/'s worker and agent units set it
        SECRET_KEY=settings.SECRET_KEY,
        PYTHONUNBUFFERED="1",
        Q_LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


def start_process(argv: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    """Start `argv` in the project folder in its own session, its output in log_path."""
    from django.conf import settings

    log = open(log_path, "wb")  # noqa: SIM115 - closed by stop_process
    proc = subprocess.Popen(
        argv,
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    proc.log_file = log
    return proc


def start_qcluster(env: dict, log_path: Path) -> subprocess.Popen:
    """Start `manage.py qcluster` in its own session, its output in log_path."""
    return start_process([sys.executable, "manage.py", "qcluster"], env, log_path)


def stop_process(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM the main process (qcluster waits for its task), then SIGKILL the group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(timeout=10)
    log = getattr(proc, "log_file", None)
    if log is not None:
        log.close()


def free_port() -> int:
    """A TCP port nothing listens on now (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port`."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def logs_text(paths, tail: int = 4000) -> str:
    """The ends of the processes' log files, for a failure message."""
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-tail:]}" for p in paths)
