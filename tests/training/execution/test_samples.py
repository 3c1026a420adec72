"""Sample images are recorded and announced while the trainer runs, each exactly once."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.core.files.base import ContentFile

from tests.factories import make_image_bytes, make_run, make_user
from tests.queue_helpers import submit_demo
from tests.ws_helpers import communicator, session_cookie
from training import live
from training.choices import RunStatus
from training.execution import runner
from training.execution.samples import SampleCollector, is_complete_png, sample_position
from training.models import SampleImage

PROMPTS = "sks red circle\nsks blue square"


@pytest.fixture(autouse=True)
def _big_layer(settings):
    # A whole demo run's messages must fit in one test channel (default capacity is 100).
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 100_000},
        }
    }
    settings.LORASTUDIO_GPU_BACKEND = "fake"
    settings.LORASTUDIO_FAKE_GPUS = "24576:Fake 24G"


def _drain(layer, channel: str) -> list[dict]:
    async def receive_all():
        messages = []
        while layer.channels.get(channel):
            messages.append(await layer.receive(channel))
        return messages

    return async_to_sync(receive_all)()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_demo_run_records_and_announces_samples_while_it_trains(student, monkeypatch):
    # Slow steps leave the runner several scans between a sample and the trainer's exit.
    monkeypatch.setenv("DEMO_TRAINER_STEP_DELAY", "0.15")
    params = {"max_train_epochs": 3, "resolution": 32, "network_dim": 4}
    params["sample_every_n_epochs"] = 1
    run = submit_demo(student, params=params, sample_prompts=PROMPTS)
    run.refresh_from_db()
    assert run.status == RunStatus.ASSIGNED, run.status_message
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"run-{run.pk}", channel)

    assert runner.execute(run.pk) == RunStatus.SUCCEEDED

    samples = list(SampleImage.objects.filter(run=run).order_by("epoch", "index"))
    assert [(s.epoch, s.index) for s in samples] == [(e, i) for e in (1, 2, 3) for i in (0, 1)]
    assert [s.prompt for s in samples[:2]] == ["sks red circle", "sks blue square"]
    assert len({s.file.name for s in samples}) == len(samples)
    # Recorded during the run: before the runner collected the final LoRA at the end.
    final = run.artifacts.get(kind="final")
    assert samples[0].created_at < final.created_at

    messages = _drain(layer, channel)
    announced = [m for m in messages if m["type"] == "run.sample"]
    assert sorted(m["id"] for m in announced) == sorted(s.pk for s in samples)
    first = next(m for m in announced if m["id"] == samples[0].pk)
    assert first["url"] == f"/runs/{run.pk}/samples/{samples[0].pk}/"
    assert (first["epoch"], first["index"], first["prompt"]) == (1, 0, "sks red circle")
    # The first epoch's samples reach the page before the run's last epoch starts.
    order = [m["type"] for m in messages]
    last_epoch_log = next(
        i for i, m in enumerate(messages) if m["type"] == "run.log" and "epoch 3/3" in m["text"]
    )
    assert order.index("run.sample") < last_epoch_log


@pytest.mark.django_db
def test_collector_waits_for_a_whole_png_and_records_it_once(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    owner = make_user(username="dora")
    run = make_run(owner=owner)
    sample_dir = tmp_path / "sample"
    sample_dir.mkdir()
    collector = SampleCollector(run.pk, sample_dir, prompts=["a", "b"])
    whole = make_image_bytes("PNG", size=(32, 32))
    growing = sample_dir / "demo_e000001_01_20250101000000.png"
    growing.write_bytes(whole[: len(whole) // 2])

    assert collector.scan() == []
    growing.write_bytes(whole)
    [sample] = collector.scan()
    assert (sample.epoch, sample.step, sample.index, sample.prompt) == (1, None, 1, "b")
    assert collector.scan() == [] and collector.scan(final=True) == []
    stored = settings.MEDIA_ROOT / "runs" / str(run.pk)
    assert [path.name for path in stored.iterdir()] == [growing.name]
    assert SampleImage.objects.filter(run=run).count() == 1


def test_a_png_still_being_written_is_not_complete(tmp_path):
    whole = make_image_bytes("PNG", size=(16, 16))
    path = tmp_path / "s.png"
    path.write_bytes(whole[:-12])  # everything but IEND
    assert not is_complete_png(path)
    path.write_bytes(whole)
    assert is_complete_png(path)
    path.write_bytes(make_image_bytes("JPEG", size=(16, 16)))
    assert not is_complete_png(path)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("lora-run3_e000002_01_20250101120000.png", (2, None, 1)),
        ("lora-run3_000120_00_20250101120000.png", (None, 120, 0)),
        ("whatever.png", (None, None, 0)),
    ],
)
def test_sample_position_reads_sd_scripts_names(name, expected):
    assert sample_position(name) == expected


@pytest.mark.django_db(transaction=True)
def test_run_page_socket_sends_stored_samples_then_relays_new_ones_to_the_owner(student):
    run = make_run(owner=student)

    def store(name: str) -> SampleImage:
        return SampleImage.objects.create(
            run=run, file=ContentFile(make_image_bytes(), name=name), epoch=1
        )

    old = store("s_e000001_00_x.png")  # made before the page connected
    cookie = session_cookie(student)

    async def watch():
        comm = communicator(f"/ws/runs/{run.pk}/", cookie)
        connected, _ = await comm.connect()
        assert connected
        await comm.receive_json_from(timeout=5)  # the current state
        on_connect = await comm.receive_json_from(timeout=5)
        new = await sync_to_async(store)("s_e000001_01_x.png")
        await sync_to_async(live.send_sample)(new)
        relayed = await comm.receive_json_from(timeout=5)
        await comm.disconnect()
        return on_connect, relayed, new

    on_connect, relayed, new = async_to_sync(watch)()
    assert on_connect["type"] == "sample" and on_connect["id"] == old.pk
    assert relayed["type"] == "sample" and relayed["id"] == new.pk
    assert relayed["url"] == f"/runs/{run.pk}/samples/{new.pk}/" and relayed["epoch"] == 1
