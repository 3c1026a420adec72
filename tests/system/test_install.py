"""install.sh on a fake workstation home: --dry-run shows and changes nothing; a run registers."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_home import make_fake_home, make_hub_cache
from tests.paths import REPO as ROOT

pytestmark = pytest.mark.slow


def install(tmp_path, *args, extra_env=None):
    """Run install.sh with its own .env and SQLite database under tmp_path."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SECRET_KEY", "DEBUG")}
    env.update(
        LORASTUDIO_DATA_DIR=str(tmp_path / "data"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'data' / 'db.sqlite3'}",
        LORASTUDIO_NODE="ws1",
        PYTHON=sys.executable,
        **(extra_env or {}),
    )
    return subprocess.run(
        [
            str(ROOT / "install.sh"),
            "--home",
            str(tmp_path / "home"),
            "--no-probe",
            "--env-file",
            str(tmp_path / "env"),
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def home(tmp_path):
    return make_fake_home(tmp_path / "home")


def test_dry_run_prints_what_it_found_and_changes_nothing(home, tmp_path):
    result = install(tmp_path, "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"sdscripts_dir: {home / 'sd-scripts'}" in out
    assert f"sdscripts_python: {home / 'sd-scripts/venv/bin/python'}" in out
    assert f"ComfyUI: {home / 'ComfyUI'}" in out
    assert f"lora_dir: {home / 'SwarmUI/Models/Lora'}" in out
    assert "Would register sd3.5_large (sd35_large)" in out
    assert "Would register flux1-dev (flux1_dev)" in out
    assert "Would register sd_xl_base_1.0 (sdxl)" in out
    assert "would add SECRET_KEY" in out
    hf_home = home / ".cache/huggingface"
    assert f"Hugging Face cache: {hf_home} (tokenizers: google/gemma-2-2b, " in out
    assert f"trainer_env HF_HOME: {hf_home}" in out
    assert not (tmp_path / "env").exists()
    assert not (tmp_path / "data").exists()


def rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_install_registers_the_node_and_models_and_is_idempotent(home, tmp_path):
    first = install(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    db = tmp_path / "data" / "db.sqlite3"
    assert rows(db, "select name, sdscripts_dir, lora_dir from training_gpunode") == [
        ("ws1", str(home / "sd-scripts"), str(home / "SwarmUI/Models/Lora"))
    ]
    # The hub cache it found: HF_HOME for the trainer, never HF_HUB_OFFLINE.
    (env,) = rows(db, "select trainer_env from training_gpunode")[0]
    assert json.loads(env) == {"HF_HOME": str(home / ".cache/huggingface")}
    models = "select name, architecture from training_basemodel order by name"
    assert rows(db, models) == [
        ("flux1-dev", "flux1_dev"),
        ("sd3.5_large", "sd35_large"),
        ("sd_xl_base_1.0", "sdxl"),
    ]
    env_text = (tmp_path / "env").read_text()
    assert env_text.count("SECRET_KEY=") == 1 and "LORASTUDIO_NODE=ws1" in env_text
    assert (tmp_path / "env").stat().st_mode & 0o777 == 0o600

    second = install(tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Unchanged: node ws1" in second.stdout
    assert (tmp_path / "env").read_text() == env_text
    assert len(rows(db, models)) == 3
    assert rows(db, "select count(*) from training_historicalbasemodel") == [(3,)]


def test_an_existing_world_readable_env_file_is_made_private(home, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("SECRET_KEY=an-existing-key-kept-as-it-is-0123456789-abcdefghijklmn\n")
    env_file.chmod(0o644)

    dry = install(tmp_path, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"would run: chmod 600 {env_file} (now 644)" in dry.stdout
    assert env_file.stat().st_mode & 0o777 == 0o644  # a dry run changes nothing

    result = install(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert env_file.stat().st_mode & 0o777 == 0o600
    assert "an-existing-key-kept-as-it-is" in env_file.read_text()


def test_dry_run_shows_the_hub_cache_of_hf_home(tmp_path):
    make_fake_home(tmp_path / "home", hub_cache=False)
    hf_home = make_hub_cache(tmp_path / "hf", ["openai/clip-vit-large-patch14"])
    result = install(tmp_path, "--dry-run", extra_env={"HF_HOME": str(hf_home)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Hugging Face cache: {hf_home} (tokenizers: openai/clip-vit-large-patch14)" in (
        result.stdout
    )
    assert f"trainer_env HF_HOME: {hf_home}" in result.stdout


def test_install_refuses_a_missing_home(tmp_path):
    result = install(tmp_path)
    assert result.returncode == 2
    assert "is not a folder" in result.stdout
