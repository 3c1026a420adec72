"""How a finished trainer is classified: the status and reason a student sees."""

import subprocess
import sys

import pytest

from sdscripts.outcome import classify_exit
from tests.paths import FAKE_TRAINERS as FAKES

OOM_TAIL = (
    "Traceback (most recent call last):\n"
    '  File "train_network.py", line 1405, in train\n'
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a "
    "total capacity of 23.55 GiB\n"
)
OLD_OOM_TAIL = "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB\n"
BARE_OOM_TAIL = "RuntimeError: CUDA out of memory. Tried to allocate 1.50 GiB\n"
ARGPARSE_TAIL = (
    "usage: train_network.py [-h] [--dataset_config DATASET_CONFIG]\n"
    "train_network.py: error: unrecognized arguments: --bogus_flag\n"
)
NO_DATA_TAIL = (
    "prepare images.\n"
    "No data found. Please verify arguments (train_data_dir must be the parent of folders "
    "with images)\n"
)
MISSING_TAIL = (
    "Traceback (most recent call last):\n"
    "FileNotFoundError: [Errno 2] No such file or directory: '/models/sd3.5_large.safetensors'\n"
)
CRASH_TAIL = (
    "Traceback (most recent call last):\n"
    '  File "train_network.py", line 10, in <module>\n'
    "ValueError: bucket_reso_steps must be divisible by 64\n"
)

DAMAGED_TAIL = (
    "load StableDiffusion checkpoint: /m/clip.safetensors\n"
    "load StableDiffusion checkpoint: /m/sd15.safetensors\n"
    "safetensors_rust.SafetensorError: Error while deserializing header: HeaderTooLarge\n"
)
TOKENIZER_TAIL = (
    '  File "/sd/library/strategy_base.py", line 65, in _load_tokenizer\n'
    "TypeError: expected str, bytes or os.PathLike object, not NoneType\n"
)
NO_SPACE_TAIL = "OSError: [Errno 28] No space left on device: '/w/out/lora.safetensors'\n"
FILES = {"checkpoint": "/m/sd15.safetensors", "clip_l": "/m/clip.safetensors"}


@pytest.mark.parametrize(
    "tail, reason, words",
    [
        (DAMAGED_TAIL, "model_file", "/m/sd15.safetensors"),  # the last file it loaded
        ("SafetensorError: MetadataIncompleteBuffer\n", "model_file", "/m/clip.safetensors"),
        (TOKENIZER_TAIL, "config", "--tokenizer-cache-dir"),
        (NO_SPACE_TAIL, "disk_full", "free space"),
    ],
)
def test_engine_failures_get_a_reason_and_advice(tail, reason, words):
    outcome = classify_exit(1, tail, False, False, model_files=FILES)
    assert (outcome.status, outcome.reason) == ("failed", reason)
    assert words in outcome.message


@pytest.mark.parametrize(
    ("returncode", "tail", "lora", "cancelled", "status", "reason", "words"),
    [
        (0, "model saved.\n", True, False, "succeeded", "", "final LoRA"),
        (-15, OOM_TAIL, False, True, "cancelled", "", "cancelled"),
        (0, "model saved.\n", True, True, "cancelled", "", "cancelled"),
        (1, OOM_TAIL, False, False, "failed", "oom", "Tried to allocate 2.00 GiB"),
        (1, OLD_OOM_TAIL, False, False, "failed", "oom", "out of memory"),
        (1, BARE_OOM_TAIL, False, False, "failed", "oom", "1.50 GiB"),
        (2, ARGPARSE_TAIL, False, False, "failed", "config", "unrecognized arguments: --bogus"),
        (2, "", False, False, "failed", "config", "exit code 2"),
        (0, NO_DATA_TAIL, False, False, "failed", "trainer_error", "No data found"),
        (0, "model saved.\n", False, False, "failed", "trainer_error", "wrote no LoRA"),
        (1, MISSING_TAIL, False, False, "failed", "missing_files", "sd3.5_large.safetensors"),
        (1, CRASH_TAIL, False, False, "failed", "trainer_error", "bucket_reso_steps"),
        (1, "", False, False, "failed", "trainer_error", "exit code 1"),
        (-9, "", False, False, "failed", "trainer_error", "SIGKILL"),
        (None, "", False, False, "failed", "trainer_error", "without an exit status"),
    ],
)
def test_classify_exit(returncode, tail, lora, cancelled, status, reason, words):
    outcome = classify_exit(returncode, tail, lora, cancelled)
    assert (outcome.status, outcome.reason) == (status, reason)
    assert words in outcome.message
    assert "\n" not in outcome.message


def test_message_stays_short_for_huge_errors():
    tail = "RuntimeError: " + "x" * 5000 + "\n"
    outcome = classify_exit(1, tail, False, False)
    assert outcome.reason == "trainer_error"
    assert len(outcome.message) < 400


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ("oom.py", "oom"),
        ("bad_args.py", "config"),
        ("no_data.py", "trainer_error"),
        ("missing_model.py", "missing_files"),
    ],
)
@pytest.mark.slow
def test_fake_trainers_classify_as_their_real_counterparts(script, reason):
    done = subprocess.run(
        [sys.executable, str(FAKES / script), "--output_dir", "/nonexistent", "--x", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    outcome = classify_exit(done.returncode, done.stdout + done.stderr, False, False)
    assert (outcome.status, outcome.reason) == ("failed", reason)
