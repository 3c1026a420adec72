"""The built-in demo trainer, run as a real subprocess the way the runner starts it."""

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from safetensors import safe_open

from sdscripts.lora_file import read_metadata
from sdscripts.progress import StreamSplitter, parse_epoch, parse_progress, parse_saved_path
from tests.paths import REPO

pytestmark = pytest.mark.slow

SAMPLE_NAME = re.compile(r"^demo_e(\d{6})_(\d{2})_\d{14}\.png$")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    output_dir: Path


def make_dataset(root: Path, count: int, *, captions: bool = True) -> Path:
    """Write `count` coloured images (half with .txt captions) and a dataset TOML."""
    image_dir = root / "images"
    image_dir.mkdir(parents=True)
    for i in range(count):
        image = Image.new("RGB", (48 + 4 * i, 40), (40 * i % 256, 90, 200 - 10 * i))
        ImageDraw.Draw(image).ellipse((4, 4, 30, 30 + i), fill=(250, 220, 10))
        image.save(image_dir / f"img{i:02d}.{'png' if i % 2 else 'jpg'}")
        if captions and i % 2:
            (image_dir / f"img{i:02d}.txt").write_text(f"sks blob, tag{i}\nignored second line")
    (image_dir / "notes.md").write_text("not an image")
    config = root / "dataset.toml"
    config.write_text(
        "[general]\n"
        'caption_extension = ".txt"\n'
        "[[datasets]]\n"
        "resolution = 32\n"
        "batch_size = 2\n"
        "[[datasets.subsets]]\n"
        f'image_dir = "{image_dir}"\n'
        "num_repeats = 2\n"
        'class_tokens = "sks blob"\n'
    )
    return config


def run_trainer(config: Path, output_dir: Path, *extra: str, **flags: object) -> Run:
    """Run `python -m demo_trainer` with the builder's demo flags."""
    values = {
        "dataset_config": config,
        "output_dir": output_dir,
        "output_name": "demo",
        "max_train_epochs": 4,
        "network_dim": 3,
        "network_alpha": 3,
        "learning_rate": 5e-3,
        "resolution": 32,
        "train_batch_size": 2,
        "seed": 7,
    }
    values.update(flags)
    argv = [sys.executable, "-m", "demo_trainer"]
    for key, value in values.items():
        argv += [f"--{key}", str(value)]
    # Bytes, not text=True: universal newlines would turn the bar's "\r" into "\n".
    done = subprocess.run(argv + list(extra), cwd=REPO, capture_output=True, timeout=240)
    return Run(done.returncode, done.stdout.decode(), done.stderr.decode(), output_dir)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    config = make_dataset(root, 8)
    prompts = root / "prompts.txt"
    prompts.write_text("sks blob, red\n\nsks blob --d 5 --n blurry\n")
    return run_trainer(
        config,
        root / "out",
        save_every_n_epochs=1,
        sample_prompts=prompts,
        sample_every_n_epochs=2,
    )


def bars(stderr: str):
    splitter = StreamSplitter()
    pieces = splitter.feed(stderr) + splitter.flush()
    return [p for p in (parse_progress(piece.text) for piece in pieces) if p is not None]


def test_run_succeeds_and_writes_epoch_files_and_final_lora(trained):
    assert trained.returncode == 0, trained.stderr
    names = sorted(p.name for p in trained.output_dir.glob("*.safetensors"))
    assert names == [
        "demo-000001.safetensors",
        "demo-000002.safetensors",
        "demo-000003.safetensors",
        "demo.safetensors",
    ]
    saved = [parse_saved_path(line) for line in trained.stdout.splitlines()]
    assert [Path(p).name for p in saved if p] == names[:3] + ["demo.safetensors"]
    assert trained.stdout.rstrip().endswith("model saved.")


def test_lora_has_sd_scripts_keys_and_metadata(trained):
    with safe_open(trained.output_dir / "demo.safetensors", framework="pt") as lora:
        keys = list(lora.keys())
        metadata = lora.metadata()
        downs = [lora.get_tensor(k) for k in keys if k.endswith(".lora_down.weight")]
        ups = [lora.get_tensor(k) for k in keys if k.endswith(".lora_up.weight")]
    assert keys and all(k.startswith("lora_unet_") for k in keys)
    assert all(k.endswith((".lora_down.weight", ".lora_up.weight", ".alpha")) for k in keys)
    modules = {k.rsplit(".", 2)[0] if "weight" in k else k.rsplit(".", 1)[0] for k in keys}
    for module in modules:
        assert {f"{module}.lora_down.weight", f"{module}.lora_up.weight", f"{module}.alpha"} <= set(
            keys
        )
    assert all(t.shape[0] == 3 for t in downs)
    assert any(t.abs().sum() > 0 for t in ups), "the adapters were trained"
    assert metadata["ss_network_dim"] == "3"
    assert metadata["ss_network_alpha"] == "3"
    assert metadata["ss_num_epochs"] == "4"
    assert metadata["ss_base_model_version"] == "demo"
    assert metadata["modelspec.title"] == "demo"  # the output name without --metadata_title
    # Nothing of the moment or of the run's number: the file must be reproducible.
    assert not {"ss_output_name", "ss_training_started_at", "ss_training_finished_at"} & set(
        metadata
    )
    assert metadata["modelspec.architecture"] == "demo/lora"
    assert metadata["ss_num_train_images"] == "16"
    tags = json.loads(metadata["ss_tag_frequency"])
    counts = next(iter(tags.values()))
    assert counts["sks blob"] == 8  # 4 captioned + 4 falling back to the class tokens
    assert counts["tag3"] == 1


def test_prints_the_sd_scripts_start_summary_and_epochs(trained):
    out = trained.stdout
    assert "running training / 学習開始" in out
    assert "  num train images * repeats / 学習画像の数×繰り返し回数: 16" in out
    assert "  num epochs / epoch数: 4" in out
    assert "  batch size per device / バッチサイズ: 2" in out
    assert "  total optimization steps / 学習ステップ数: 32" in out
    epochs = [parse_epoch(line) for line in out.splitlines()]
    assert [e for e in epochs if e] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert "DEMO" in out


def test_progress_bar_goes_to_stderr_and_loss_goes_down(trained):
    assert "\r" in trained.stderr and trained.stderr.endswith("\n")
    updates = bars(trained.stderr)
    assert updates[0].step == 0 and updates[0].remaining_s is None and updates[0].loss is None
    assert updates[-1].step == updates[-1].total == 32
    # avr_loss is sd-scripts' one-epoch moving average: compare epoch 1 with the last epoch.
    after_first_epoch = next(u for u in updates if u.step == 8)
    assert updates[-1].loss < after_first_epoch.loss


def test_samples_follow_the_sd_scripts_name_pattern(trained):
    samples = sorted((trained.output_dir / "sample").iterdir())
    found = [SAMPLE_NAME.match(p.name) for p in samples]
    assert all(found), [p.name for p in samples]
    assert sorted((m[1], m[2]) for m in found) == [
        ("000002", "00"),
        ("000002", "01"),
        ("000004", "00"),
        ("000004", "01"),
    ]
    with Image.open(samples[0]) as image:
        assert image.format == "PNG" and image.size == (32, 32)


def test_same_seed_gives_the_same_lora_file_byte_for_byte(tmp_path):
    """Two trainings in two processes, two output folders and two output names (as two runs
    of the runner have), one seed: the same file. Another seed: other weights."""
    config = make_dataset(tmp_path, 3)
    title = "--metadata_title=shapes"
    first = run_trainer(config, tmp_path / "a", title, max_train_epochs=1, output_name="x-run1")
    second = run_trainer(config, tmp_path / "b", title, max_train_epochs=1, output_name="x-run2")
    other = run_trainer(config, tmp_path / "c", title, max_train_epochs=1, seed=8)
    assert first.returncode == second.returncode == other.returncode == 0, first.stderr
    a_bytes = (tmp_path / "a" / "x-run1.safetensors").read_bytes()
    assert a_bytes == (tmp_path / "b" / "x-run2.safetensors").read_bytes()
    assert read_metadata(tmp_path / "a" / "x-run1.safetensors")["modelspec.title"] == "shapes"

    def tensors(run):
        with safe_open(run.output_dir / "demo.safetensors", framework="pt") as lora:
            return {k: lora.get_tensor(k) for k in lora.keys()}

    with safe_open(tmp_path / "a" / "x-run1.safetensors", framework="pt") as lora:
        a = {k: lora.get_tensor(k) for k in lora.keys()}
    c = tensors(other)
    assert any((a[k] != c[k]).any() for k in a)


def test_empty_dataset_prints_no_data_and_writes_nothing(tmp_path):
    config = make_dataset(tmp_path, 0)
    run = run_trainer(config, tmp_path / "out")
    assert run.returncode == 0
    assert "No data found. Please verify arguments" in run.stdout
    assert not list(tmp_path.rglob("*.safetensors"))


@pytest.mark.parametrize(
    ("extra", "flags", "message"),
    [
        (["--bogus_flag", "1"], {}, "unrecognized arguments: --bogus_flag"),
        ([], {"network_dim": 0}, "--network_dim"),
        ([], {"resolution": "64,64"}, "--resolution"),
        ([], {"learning_rate": "fast"}, "--learning_rate"),
    ],
)
def test_bad_flags_exit_2_like_argparse(tmp_path, extra, flags, message):
    config = make_dataset(tmp_path, 1)
    run = run_trainer(config, tmp_path / "out", *extra, **flags)
    assert run.returncode == 2
    assert "error:" in run.stderr and message in run.stderr
    assert not (tmp_path / "out").exists()


def test_importing_the_module_does_not_import_torch():
    code = "import sys, demo_trainer.cli; print('torch' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "False"
