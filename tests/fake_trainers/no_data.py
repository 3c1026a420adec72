"""Fake trainer: finds no images and exits 0 without writing a LoRA, as sd-scripts does.

Accepts any argv. stdout: the dataset loading lines and
"No data found. Please verify arguments (train_data_dir must be the parent of folders with
images)". Exit code 0; no file written.
"""

import sys

from _common import out

out("Loading dataset config from /tmp/work/dataset.toml")
out("prepare images.")
out("0 train images with repeating.")
out("0 reg images.")
out(
    "No data found. Please verify arguments (train_data_dir must be the parent of folders "
    "with images) / 画像がありません。引数指定を確認してください（train_data_dirには画像が"
    "あるフォルダではなく、画像があるフォルダの親フォルダを指定する必要があります）"
)
sys.exit(0)
