"""Pre-flight lint: bucket rules as sd-scripts has them, histogram and findings (no database)."""

import pytest

from datasets.lint import (
    Bucket,
    ImageFacts,
    lint_images,
    make_bucket_resolutions,
    resolution_histogram,
    select_bucket,
)


def facts(n, *, size=(1024, 1024), caption="sks, a dog", phash=""):
    return [
        ImageFacts(i, f"img{i}.png", *size, caption, phash or f"{i * 0x1F1F1F1F1F:016x}")
        for i in range(1, n + 1)
    ]


def codes(report):
    return [f.code for f in report.findings]


@pytest.mark.parametrize(
    ("size", "resolution", "bucket"),
    [
        ((1024, 1024), 1024, (1024, 1024)),
        ((4000, 3000), 1024, (1152, 896)),
        ((3000, 4000), 1024, (896, 1152)),
        ((1920, 1080), 1024, (1344, 768)),
        ((512, 512), 512, (512, 512)),
        ((6000, 1000), 1024, (2048, 320)),
        ((6000, 1000), 512, (1024, 256)),
    ],
)
def test_bucket_selection_matches_sd_scripts(size, resolution, bucket):
    assert select_bucket(*size, make_bucket_resolutions(resolution)) == bucket


def test_buckets_respect_area_steps_and_bounds():
    resos = make_bucket_resolutions(1024, min_reso=256, max_reso=2048, steps=64)
    assert all(w * h <= 1024 * 1024 for w, h in resos)
    assert all(w % 64 == 0 and h % 64 == 0 for w, h in resos)
    assert all(256 <= w <= 2048 and 256 <= h <= 2048 for w, h in resos)
    assert (1024, 1024) in resos


def test_histogram_counts_long_sides():
    hist = dict(resolution_histogram([(300, 200), (1024, 700), (700, 1024), (4000, 3000)]))
    assert hist["< 512"] == 1 and hist["1024–1535"] == 2 and hist["≥ 2048"] == 1


def test_empty_dataset_is_blocking():
    report = lint_images([], trigger_word="sks")
    assert report.blocking and codes(report) == ["no_images"]
    assert "Upload" in report.findings[0].action


def test_good_dataset_has_no_warnings():
    report = lint_images(facts(10), trigger_word="sks")
    assert not report.blocking
    assert [f for f in report.findings if f.severity != "info"] == []
    assert report.buckets[0].count == 10 and report.captioned_count == 10


@pytest.mark.parametrize(
    ("images", "code", "ids"),
    [
        (facts(3), "few_images", ()),
        (facts(6)[:5] + [ImageFacts(9, "x", 1024, 1024, "")], "empty_captions", (9,)),
        (facts(6)[:5] + [ImageFacts(9, "x", 1024, 1024, "a cat")], "trigger_missing", (9,)),
        (facts(6)[:5] + [ImageFacts(9, "x", 400, 300, "sks")], "tiny_images", (9,)),
        (
            facts(6)[:5] + [ImageFacts(9, "x", 1024, 1024, "sks " + "word " * 80)],
            "long_captions",
            (9,),
        ),
        (
            facts(5) + [ImageFacts(9, "x", 1024, 1024, "sks", f"{1 * 0x1F1F1F1F1F ^ 0b101:016x}")],
            "near_duplicates",
            (1, 9),
        ),
    ],
)
def test_findings_name_the_images_and_say_what_to_do(images, code, ids):
    report = lint_images(images, trigger_word="sks")
    finding = next(f for f in report.findings if f.code == code)
    assert finding.severity == "warning" and finding.action
    assert finding.image_ids == ids
    assert not report.blocking


def test_missing_trigger_word_is_noted():
    assert "no_trigger" in codes(lint_images(facts(6), trigger_word=""))


@pytest.mark.parametrize("resolution", [32, 63, 64, 128, 200, 255])
def test_below_the_smallest_bucket_images_share_one_square_and_that_is_noted(resolution):
    # The demo trains at 32–256 px; 32 and 63 used to make a 0×0 bucket (ZeroDivisionError).
    images = facts(6, size=(1024, 768)) + facts(1, size=(300, 900))
    report = lint_images(images, trigger_word="sks", resolution=resolution)
    assert report.buckets == (Bucket(resolution, resolution, 7),)
    finding = next(f for f in report.findings if f.code == "no_buckets")
    assert finding.severity == "info" and f"{resolution}×{resolution}" in finding.message
    assert "lonely_buckets" not in codes(report) and not report.blocking


def test_at_the_smallest_bucket_side_buckets_are_used():
    report = lint_images(facts(6, size=(1024, 768)), trigger_word="sks", resolution=256)
    assert report.buckets == (Bucket(256, 256, 6),)
    assert "no_buckets" not in codes(report)


@pytest.mark.parametrize(
    ("resolution", "kw"),
    [(32, {}), (200, {}), (4096, {}), (512, {"min_reso": 768}), (512, {"steps": 0})],
)
def test_bucket_maker_refuses_what_sd_scripts_refuses(resolution, kw):
    with pytest.raises(ValueError, match="resolution|steps"):
        make_bucket_resolutions(resolution, **kw)


@pytest.mark.parametrize("resolution", [0, -64])
def test_a_resolution_that_is_not_positive_is_a_programming_error(resolution):
    with pytest.raises(ValueError, match="positive"):
        lint_images(facts(1), trigger_word="sks", resolution=resolution)
