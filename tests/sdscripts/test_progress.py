"""Splitting trainer output into log lines and progress, and reading sd-scripts' bars."""

import os
import subprocess
import sys

import pytest

from sdscripts.progress import (
    Piece,
    Progress,
    StreamSplitter,
    is_progress_noise,
    parse_epoch,
    parse_progress,
    parse_saved_path,
    parse_total_steps,
)
from tests.paths import FAKE_TRAINERS as FAKES

BAR_HALF = "steps:  50%|█████     | 4/8 [00:16<00:16,  4.18s/it, avr_loss=1.12]"
BAR_FIRST = "steps:   0%|          | 0/8 [00:00<?, ?it/s]"
BAR_FAST = "steps:  25%|██▌       | 250/1000 [01:02<03:07,  3.99it/s, avr_loss=0.0871]"
BAR_HOURS = "steps:  60%|██████    | 600/1000 [1:02:03<41:22,  6.20s/it, avr_loss=0.051]"
BAR_LONG = "steps:  10%|█         | 100/1000 [10:00<2:30:00,  6.00s/it, avr_loss=0.2]"
BAR_KEYS = (
    "steps:  50%|█████     | 4/8 [00:16<00:16,  4.18s/it, Average key norm=0.5, "
    "Keys Scaled=0, avr_loss=1.5e-02]"
)
BAR_CACHE = "caching latents: 100%|██████████| 12/12 [00:00<00:00, 431.20it/s]"
BAR_PLAIN = "100%|██████████| 12/12 [00:03<00:00,  3.71it/s]"
BAR_SAMPLE = " 40%|████      | 12/30 [00:01<00:02,  8.50it/s]"
BAR_NOTOTAL = "load images: 37it [00:02, 14.02it/s]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BAR_HALF, Progress(4, 8, 16, 16, 1 / 4.18, 1.12)),
        (BAR_FIRST, Progress(0, 8, 0, None, None, None)),
        (BAR_FAST, Progress(250, 1000, 62, 187, 3.99, 0.0871)),
        (BAR_HOURS, Progress(600, 1000, 3723, 2482, 1 / 6.2, 0.051)),
        (BAR_LONG, Progress(100, 1000, 600, 9000, 1 / 6.0, 0.2)),
        (BAR_KEYS, Progress(4, 8, 16, 16, 1 / 4.18, 0.015)),
        ("  " + BAR_HALF + "   ", Progress(4, 8, 16, 16, 1 / 4.18, 1.12)),
        (BAR_CACHE, None),
        (BAR_PLAIN, None),
        (BAR_SAMPLE, None),
        (BAR_NOTOTAL, None),
        ("epoch 1/8", None),
        ("total optimization steps / 学習ステップ数: 8", None),
        ("", None),
    ],
)
def test_parse_progress(text, expected):
    result = parse_progress(text)
    if expected is None:
        assert result is None
        return
    assert result is not None
    assert (result.step, result.total, result.elapsed_s, result.remaining_s) == (
        expected.step,
        expected.total,
        expected.elapsed_s,
        expected.remaining_s,
    )
    assert result.rate == (pytest.approx(expected.rate) if expected.rate else None)
    assert result.loss == (pytest.approx(expected.loss) if expected.loss else None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BAR_HALF, True),
        (BAR_FIRST, True),
        (BAR_HOURS, True),
        (BAR_CACHE, True),
        (BAR_PLAIN, True),
        (BAR_SAMPLE, True),
        (BAR_NOTOTAL, True),
        ("epoch 3/10", False),
        ("saving checkpoint: /out/x-000001.safetensors", False),
        ("  num epochs / epoch数: 10", False),
        ("INFO [train_network.py:1023] loading model", False),
        ("", False),
    ],
)
def test_is_progress_noise(text, expected):
    assert is_progress_noise(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("epoch 3/10", (3, 10)),
        ("\nepoch 1/1", (1, 1)),
        ("2024-05-01 12:00:00 INFO epoch 12/40", (12, 40)),
        ("  num epochs / epoch数: 10", None),
        ("epoch 3/10 is over and more text", None),
        ("steps", None),
    ],
)
def test_parse_epoch(text, expected):
    assert parse_epoch(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("saving checkpoint: /w/out/run-000002.safetensors", "/w/out/run-000002.safetensors"),
        ("\nsaving checkpoint: /w/my run/x.safetensors  ", "/w/my run/x.safetensors"),
        ("model saved.", None),
        ("saving state", None),
    ],
)
def test_parse_saved_path(text, expected):
    assert parse_saved_path(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  total optimization steps / 学習ステップ数: 1600", 1600),
        ("total optimization steps: 8", 8),
        ("  num epochs / epoch数: 10", None),
        ("  num train images * repeats / 学習画像の数×繰り返し回数: 120", None),
    ],
)
def test_parse_total_steps(text, expected):
    assert parse_total_steps(text) == expected


def L(text):
    return Piece(text, "line")


def P(text):
    return Piece(text, "progress")


SPLIT_CASES = [
    ("plain lines", "a\nb\n", [L("a"), L("b")]),
    ("blank line kept", "a\n\nb\n", [L("a"), L(""), L("b")]),
    ("crlf is a line end", "a\r\nb\r\n", [L("a"), L("b")]),
    (
        "bars then newline",
        f"\r{BAR_FIRST}\r{BAR_HALF}\n",
        [P(BAR_FIRST), P(BAR_HALF)],
    ),
    (
        "log line after a bar fragment",
        f"\r{BAR_HALF}\repoch 2/5\n",
        [P(BAR_HALF), L("epoch 2/5")],
    ),
    (
        "log line glued to a bar without newline",
        f"\r{BAR_HALF}INFO saving checkpoint\n",
        [P(BAR_HALF), L("INFO saving checkpoint")],
    ),
    (
        "glued after padding spaces",
        f"\r{BAR_HALF}    epoch 2/5\n",
        [P(BAR_HALF), L("epoch 2/5")],
    ),
    (
        "cache bar then lines",
        f"\r{BAR_CACHE}\nrunning training\n",
        [P(BAR_CACHE), L("running training")],
    ),
    ("text with brackets stays a line", "INFO [x.py:12] ok\n", [L("INFO [x.py:12] ok")]),
    ("unicode", "学習開始\n", [L("学習開始")]),
    ("bare cr fragment", "loading...\rdone\n", [P("loading..."), L("done")]),
]


@pytest.mark.parametrize(
    ("name", "stream", "expected"), SPLIT_CASES, ids=[c[0] for c in SPLIT_CASES]
)
def test_splitter_whole_stream(name, stream, expected):
    splitter = StreamSplitter()
    assert splitter.feed(stream) + splitter.flush() == expected


@pytest.mark.parametrize(
    ("name", "stream", "expected"), SPLIT_CASES, ids=[c[0] for c in SPLIT_CASES]
)
def test_splitter_split_at_every_position(name, stream, expected):
    for cut in range(len(stream) + 1):
        splitter = StreamSplitter()
        pieces = splitter.feed(stream[:cut]) + splitter.feed(stream[cut:]) + splitter.flush()
        assert pieces == expected, f"cut at {cut}"


def test_splitter_one_character_at_a_time():
    stream = "".join(case[1] for case in SPLIT_CASES)
    expected = [piece for case in SPLIT_CASES for piece in case[2]]
    splitter = StreamSplitter()
    pieces = []
    for char in stream:
        pieces += splitter.feed(char)
    assert pieces + splitter.flush() == expected


def test_splitter_keeps_the_bar_being_drawn_pending():
    splitter = StreamSplitter()
    assert splitter.feed(f"\r{BAR_FIRST}\r{BAR_HALF}") == [P(BAR_FIRST)]
    assert parse_progress(splitter.pending) is not None
    assert splitter.feed("\n") == [P(BAR_HALF)]
    assert splitter.pending == ""


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        ("no newline at end", [L("no newline at end")]),
        (f"\r{BAR_HALF}", [P(BAR_HALF)]),
        ("ends with cr\r", [P("ends with cr")]),
        ("", []),
    ],
)
def test_splitter_flush_at_end_of_stream(stream, expected):
    splitter = StreamSplitter()
    assert splitter.feed(stream) + splitter.flush() == expected


@pytest.mark.slow
def test_flood_trainer_output_splits_into_its_lines_and_bars(tmp_path):
    env = dict(os.environ, FAKE_TRAINER_LINES="3000")
    done = subprocess.run(
        [sys.executable, str(FAKES / "flood.py"), "--output_dir", str(tmp_path)],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0
    pieces = []
    for stream in (done.stdout, done.stderr):
        splitter = StreamSplitter()
        raw = stream.decode()
        for start in range(0, len(raw), 997):
            pieces += splitter.feed(raw[start : start + 997])
        pieces += splitter.flush()
    lines = [p.text for p in pieces if p.kind == "line"]
    bars = [parse_progress(p.text) for p in pieces if p.kind == "progress"]
    assert sum(text.startswith("flood line ") for text in lines) == 3000
    assert lines.count("INFO glued log line after bar 2000") == 1
    assert not any(is_progress_noise(text) for text in lines)
    steps = [bar.step for bar in bars if bar is not None]
    assert steps == list(range(3001))


@pytest.mark.parametrize(
    "stream, expected",
    [
        # sd-scripts' nested sampling bar: each update is followed by ESC[A (cursor up).
        (
            "\n\r 50%|#####     | 1/2 [00:01<00:01,  1.32s/it]\x1b[A\nsaved\n",
            [Piece("", "line"), Piece(" 50%|#####     | 1/2 [00:01<00:01,  1.32s/it]", "progress"),
             Piece("saved", "line")],
        ),
        ("\x1b[A\n\x1b[31mred\x1b[0m\n", [Piece("red", "line")]),
        ("bell\x07 and tab\tkept\n", [Piece("bell and tab\tkept", "line")]),
    ],
)  # fmt: skip
def test_terminal_control_sequences_are_stripped_and_empty_leftovers_dropped(stream, expected):
    splitter = StreamSplitter()
    assert splitter.feed(stream) + splitter.flush() == expected
