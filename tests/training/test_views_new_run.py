"""The new-run page a student can use alone: plain choices, a closed Advanced section,
proposals from the dataset, and when the LoRA will be ready (the plan preview, the run page,
the dashboard, the admin)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from django.utils import timezone

from sdscripts.labels import BASIC
from tests.factories import (
    make_base_model,
    make_dataset,
    make_dataset_images,
    make_gpu,
    make_node,
    make_run,
)
from tests.queue_helpers import make_image_dataset, submit_demo
from training.lifecycle import transition
from training.models import Preset, TrainingRun
from training.scheduler import dispatch


class Page(HTMLParser):
    """The inputs of a page with their labels and whether they sit inside <details>."""

    def __init__(self, html: str):
        super().__init__()
        self.inputs: dict[str, dict] = {}
        self.labels: dict[str, str] = {}
        self.details: list[dict] = []
        self._label_for: str | None = None
        self._depth = 0  # open <details> elements
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "details":
            self._depth += 1
            self.details.append(attrs)
        elif tag in ("input", "select", "textarea") and attrs.get("name"):
            self.inputs[attrs["name"]] = {**attrs, "in_details": self._depth > 0}
        elif tag == "label" and attrs.get("for"):
            self._label_for = attrs["for"]
            self.labels[self._label_for] = ""

    def handle_endtag(self, tag):
        if tag == "details":
            self._depth -= 1
        elif tag == "label":
            self._label_for = None

    def handle_data(self, data):
        if self._label_for:
            self.labels[self._label_for] += data

    def label(self, name: str) -> str:
        return self.labels.get(self.inputs[name]["id"], "").strip()


@pytest.fixture
def demo(db):
    return Preset.objects.get(name="Demo (CPU)"), make_base_model(name="Demo toy")


@pytest.fixture
def sdxl(db):
    preset = Preset.objects.get(name="SDXL, 1024")
    model = make_base_model(name="SDXL base", architecture="sdxl", checkpoint="sdxl.safetensors")
    return preset, model


def post_data(preset, model, dataset, **params) -> dict:
    """The form as a browser posts it: the preset's ticked boxes stay ticked."""
    data = {"preset": preset.pk, "base_model": model.pk, "dataset": dataset.pk, "name": "mine"}
    data.update({f"p_{k}": "on" for k, v in (preset.values or {}).items() if v is True})
    data.update({f"p_{k}": v for k, v in params.items()})
    return {**data, "submit": "1", "form_token": str(uuid.uuid4())}


def test_plain_choices_first_and_every_other_knob_in_a_closed_advanced_section(
    student_client, sdxl
):
    preset, model = sdxl
    html = student_client.get(reverse("training:run-create"), {"preset": preset.pk}).content
    page = Page(html.decode())
    assert len(page.details) == 1 and "open" not in page.details[0]
    knobs = [name for name in page.inputs if name.startswith("p_")]
    assert len(knobs) > 20
    for name in knobs:
        option = name[2:]
        text = page.label(name)
        assert text and text.rstrip(":") != option and "_" not in text, name
        assert page.inputs[name]["in_details"] == (option not in BASIC), name
    for name in ("dataset", "base_model", "preset", "name"):
        assert not page.inputs[name]["in_details"] and page.label(name)
    assert page.inputs["sample_prompts"]["in_details"]
    # The option name is still there, as a hint beside the plain words.
    assert '<code class="opt" title="sd-scripts option">network_dim</code>' in html.decode()


def test_the_only_base_model_and_its_preset_are_chosen_for_a_newcomer(student_client, demo):
    preset, model = demo
    page = student_client.get(reverse("training:run-create")).content.decode()
    assert re.search(rf'<option value="{model.pk}" selected>', page)
    assert re.search(rf'<option value="{preset.pk}" selected>', page)


def test_choosing_a_dataset_proposes_length_trigger_word_and_resolution(
    student_client, student, sdxl
):
    preset, model = sdxl
    dataset = make_dataset(owner=student, trigger_word="ohwx cat")
    make_dataset_images(dataset, 20, size=(600, 600))  # too small for 1024 px; 832 is fine
    response = student_client.get(
        reverse("training:run-create"), {"dataset": dataset.pk, "base_model": model.pk}
    )
    page = Page(response.content.decode())
    values = {n: page.inputs[f"p_{n}"].get("value") for n in BASIC}
    # 20 images x 8 repeats x 9 passes at batch 1: 1440 steps, near SDXL's target of 1500.
    assert values == {
        "class_tokens": "ohwx cat",
        "max_train_epochs": "9",
        "num_repeats": "8",
        "network_dim": "16",  # the preset's
        "resolution": "832",
    }


def test_empty_proposed_fields_take_the_proposals_and_typed_ones_win(student_client, student, demo):
    preset, model = demo
    make_node()
    dataset = make_image_dataset(student, images=4)
    data = post_data(preset, model, dataset, num_repeats="", max_train_epochs="", resolution="")
    data["p_class_tokens"] = "zxq shape"  # typed by the student
    assert student_client.post(reverse("training:run-create"), data).status_code == 302
    run = TrainingRun.objects.get()
    # The demo aims at 100 steps: 4 images x 10 repeats x 5 passes in batches of 2.
    assert (run.params["num_repeats"], run.params["max_train_epochs"]) == (10, 5)
    assert run.params["resolution"] == 64 and run.params["class_tokens"] == "zxq shape"
    assert run.plan["estimate"]["steps"] == 100


def test_the_runs_own_repeats_and_trigger_word_reach_the_dataset_config(
    student_client, student, demo, tmp_path
):
    from training.execution import workdir

    preset, model = demo
    node = make_node(work_dir=str(tmp_path / "work"))
    dataset = make_image_dataset(student, images=2)
    data = post_data(preset, model, dataset, num_repeats=3, class_tokens="zxq")
    assert student_client.post(reverse("training:run-create"), data).status_code == 302
    _, built = workdir.prepare(TrainingRun.objects.get(), node)
    assert "num_repeats = 3" in built.dataset_config
    assert 'class_tokens = "zxq"' in built.dataset_config


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("class_tokens", "a/b", "cannot hold slashes"),
        ("num_repeats", "0", "must be at least 1"),
    ],
)
def test_bad_choices_are_refused_with_a_message_and_nothing_is_saved(
    student_client, student, demo, field, value, message
):
    preset, model = demo
    dataset = make_image_dataset(student, images=2)
    data = post_data(preset, model, dataset, **{field: value})
    response = student_client.post(reverse("training:run-create"), data)
    assert response.status_code == 200 and message in response.content.decode()
    assert not TrainingRun.objects.exists()


def _preview(client, preset, model, dataset, **params) -> str:
    data = post_data(preset, model, dataset, **params)
    del data["submit"]
    return client.get(reverse("training:run-plan"), data).content.decode()


def _seconds(html: str, name: str) -> int | None:
    found = re.search(rf'data-{name}-s="(\d*)"', html)
    assert found, f"no data-{name}-s in the preview"
    return int(found[1]) if found[1] else None


def test_the_preview_says_when_the_lora_will_be_ready_in_words_and_seconds(
    student_client, student, demo
):
    preset, model = demo
    make_node(name="cpu-node")
    dataset = make_image_dataset(student, images=4)
    html = _preview(student_client, preset, model, dataset)
    assert _seconds(html, "start") == 0
    duration = _seconds(html, "duration")
    prior = 100 * model.spec.prior_step_s * 2  # 100 steps at the prior, 64 px, batch 2
    assert duration == round(prior)
    assert "Starts <strong>right away</strong>, ready at <strong>about" in html
    assert "a guess: no run like it has finished yet" in html
    assert "100 steps: 4 images × 10 repeats × 5 passes, 2 images a step." in html


def _finished(owner, model, *, seconds: float, steps: int, params: dict, gpu=None, ago=60):
    """A run that succeeded `ago` seconds ago after `seconds` of training."""
    run = make_run(owner=owner, base_model=model, params=params, gpu=gpu)
    end = timezone.now() - timedelta(seconds=ago)
    TrainingRun.objects.filter(pk=run.pk).update(
        status="succeeded",
        started_at=end - timedelta(seconds=seconds),
        finished_at=end,
        step=steps,
        total_steps=steps,
    )
    return run


def test_history_of_the_same_shape_sets_the_duration(student_client, student, demo):
    preset, model = demo
    make_node()
    shape = {"resolution": 64, "train_batch_size": 2}
    for seconds in (40, 44, 36):  # 0.4 s a step over 100 steps, ±10 %
        _finished(student, model, seconds=seconds, steps=100, params=shape)
    _finished(student, model, seconds=500, steps=100, params={**shape, "resolution": 128})
    dataset = make_image_dataset(student, images=4)
    html = _preview(student_client, preset, model, dataset)
    assert _seconds(html, "duration") == 40  # 100 steps x the median 0.4 s
    assert "fairly sure: within about ±10 % (3 finished runs like it)" in html


def test_the_start_waits_for_the_run_on_the_only_place_and_the_queue_ahead(
    student_client, student, other_student, demo
):
    preset, model = demo
    node = make_node()
    running = submit_demo(other_student, node=node, base_model=model)
    dispatch()  # it takes the node's CPU slot
    transition(running, "preparing")
    transition(running, "running")
    TrainingRun.objects.filter(pk=running.pk).update(step=50, total_steps=150, speed=2.0)
    other = make_image_dataset(other_student, name="theirs")
    waiting = submit_demo(other_student, node=node, base_model=model, dataset=other)
    dispatch()
    waiting.refresh_from_db()
    assert waiting.status == "queued"
    ahead = waiting.plan["estimate"]["duration_s"]
    dataset = make_image_dataset(student, images=4)
    html = _preview(student_client, preset, model, dataset)
    assert _seconds(html, "start") == 50 + ahead  # 100 steps left at 2 a second, then it
    assert "1 queued run ahead of it" in html


def test_savers_are_named_in_plain_words_with_their_cost_and_a_trade_off(
    student_client, student, db
):
    preset = Preset.objects.get(name="FLUX.1 dev, 1024")
    model = make_base_model(
        name="FLUX dev",
        architecture="flux1_dev",
        checkpoint="f.safetensors",
        clip_l="c.safetensors",
        t5xxl="t.safetensors",
        ae="a.safetensors",
    )
    make_gpu(node=make_node(), total_mib=16384, name="RTX 4080")
    dataset = make_dataset(owner=student)
    make_dataset_images(dataset, 10, size=(1024, 1024))
    html = _preview(student_client, preset, model, dataset, resolution=1024)
    assert "keeps part of the model in CPU memory</strong>: about " in html
    assert "% slower." in html
    assert re.search(r"At (\d+) px instead of 1024 px it needs no saver that slows it", html)
    assert 'data-set-field="p_resolution"' in html


def test_the_run_page_and_dashboard_say_when_a_queued_run_will_be_ready(
    student_client, student, demo
):
    preset, model = demo
    node = make_node()
    dataset = make_image_dataset(student)
    first = submit_demo(student, node=node, base_model=model, dataset=dataset)
    second = submit_demo(student, node=node, base_model=model, dataset=dataset)
    dispatch()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("assigned", "queued")
    page = student_client.get(reverse("training:run-detail", args=[second.pk])).content.decode()
    assert re.search(r'id="run-ready"[^>]*>starts (soon|in [^,]+), ready at about <time', page)
    fragment = student_client.get(reverse("training:run-ready", args=[second.pk])).content
    assert b"ready at about <time datetime=" in fragment
    dashboard = student_client.get(reverse("home")).content.decode()
    assert dashboard.count("ready at about <time") == 2


def test_a_finished_run_shows_what_it_took_against_the_estimate(
    student_client, staff_client, student, demo
):
    preset, model = demo
    make_node()
    run = submit_demo(student, base_model=model)
    estimate = run.plan["estimate"]["duration_s"]
    dispatch()
    transition(run, "preparing")
    transition(run, "running")
    transition(run, "succeeded")
    start = timezone.now() - timedelta(seconds=estimate * 2)
    TrainingRun.objects.filter(pk=run.pk).update(started_at=start, step=100, total_steps=100)
    page = student_client.get(reverse("training:run-detail", args=[run.pk])).content.decode()
    assert "took " in page and "(estimated " in page
    admin = staff_client.get(reverse("admin:training_trainingrun_changelist")).content.decode()
    assert "Duration est. / actual" in admin
    assert "(-50%)" in admin
    assert re.search(r"Duration estimates of the latest 1 succeeded run: 0 within 25 %", admin)


@pytest.fixture
def flux(db):
    preset = Preset.objects.get(name="FLUX.1 dev, 1024")
    files = {"checkpoint": "f", "clip_l": "c", "t5xxl": "t", "ae": "a"}
    return preset, make_base_model(name="FLUX dev", architecture="flux1_dev", **files)


def test_a_smaller_gpu_free_now_is_offered_when_the_large_one_is_busy(
    student_client, student, other_student, flux
):
    preset, model = flux
    small = make_gpu(node=make_node(name="gpu-a"), total_mib=16384, name="RTX 4080")
    large = make_gpu(node=make_node(name="gpu-b"), total_mib=24576, name="RTX 4090")
    busy = make_run(owner=other_student, base_model=model)
    for status in ("queued", "assigned", "preparing", "running"):
        transition(busy, status, changes={"gpu": large, "node": large.node})
    TrainingRun.objects.filter(pk=busy.pk).update(step=0, total_steps=7200, speed=1.0)
    dataset = make_dataset(owner=student)
    make_dataset_images(dataset, 10, size=(1024, 1024))
    html = _preview(student_client, preset, model, dataset, resolution=1024)
    assert _seconds(html, "start") == 7200  # the plan for 24 GB waits for the RTX 4090
    assert "Planned for a 16 GB GPU, it keeps part of the model in CPU memory (about " in html
    assert "gpu-a GPU 0 (RTX 4080) is free now" in html
    assert f'data-set-field="gpu_mib" data-set-value="{small.total_mib}"' in html

    # Taking it: the run is planned for 16 GB and starts on the free RTX 4080.
    data = post_data(preset, model, dataset, resolution=1024)
    data["gpu_mib"] = "16384"
    assert student_client.post(reverse("training:run-create"), data).status_code == 302
    run = TrainingRun.objects.exclude(pk=busy.pk).get()
    assert run.plan["budget_mib"] == 16384 and run.params["blocks_to_swap"] > 0
    assert run.plan["estimate"]["start_s"] == 0
    assert run.plan["estimate"]["gpu_model"] == "RTX 4080"
