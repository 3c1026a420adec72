"""Provenance through the real runner: the record, the LoRA's metadata, "run exactly again"."""

import hashlib

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from datasets.fingerprint import content_sha256, dataset_entries
from datasets.services import save_captions
from sdscripts.lora_file import read_metadata
from tests.queue_helpers import submit_demo, submit_replay
from training import services
from training.choices import RunStatus
from training.execution import runner
from training.models import FileHash, ProvenanceIsFinal, RunProvenance, TrainingRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
NOTHING = hashlib.sha256(b"").hexdigest()


@pytest.fixture(autouse=True)
def _one_fake_gpu(settings):
    settings.LORASTUDIO_GPU_BACKEND = "fake"
    settings.LORASTUDIO_FAKE_GPUS = "24576:Fake 24G"


def _train(run) -> TrainingRun:
    run.refresh_from_db()
    assert run.status == RunStatus.ASSIGNED, run.status_message
    runner.execute(run.pk)
    run.refresh_from_db()
    return run


def _final(run):
    return run.artifacts.get(kind="final")


def test_a_demo_lora_names_its_run_and_hashes_and_the_record_is_final(student, tmp_path):
    from tests.factories import make_node

    run = _train(submit_demo(student, node=make_node(lora_dir=str(tmp_path / "Lora"))))
    assert run.status == RunStatus.SUCCEEDED, run.status_message

    record = RunProvenance.objects.get(run=run)
    assert record.dataset_sha256 == content_sha256(dataset_entries(run.dataset))
    assert record.base_model_sha256 == NOTHING  # the demo's model is built into the trainer
    assert record.argv == run.argv and record.dataset_config == run.dataset_config
    assert record.params == run.params
    names = sorted(f["original_name"] for f in record.files)
    assert names == ["img0.png", "img1.png", "img2.png", "img3.png"]
    assert {f["caption"] for f in record.files} >= {"sks shape number 0"}
    assert record.sdscripts_version.startswith("demo_trainer (LoRA Studio ")
    assert record.packages["torch"] and record.packages["python"].startswith("3.")
    assert record.lorastudio_version.startswith("0.16.0")

    final = _final(run)
    for path in (final.file.path, final.published_path):
        metadata = read_metadata(path)
        assert metadata["lorastudio_run_id"] == str(run.pk)
        assert metadata["lorastudio_dataset_sha256"] == record.dataset_sha256
        assert metadata["lorastudio_base_model_sha256"] == NOTHING
        assert metadata["ss_network_dim"] == "4"  # sd-scripts' keys stay
        assert metadata["modelspec.author"] == "alice"
    assert final.trainer_sha256 and final.trainer_sha256 != final.sha256
    epoch = run.artifacts.get(kind="epoch")
    assert read_metadata(epoch.file.path)["lorastudio_run_id"] == str(run.pk)

    record.node_name = "elsewhere"
    with pytest.raises(ProvenanceIsFinal):
        record.save()


def test_run_exactly_again_reproduces_the_demo_file_and_says_so(student):
    first = _train(submit_demo(student))
    assert first.status == RunStatus.SUCCEEDED, first.status_message

    call_command("rerun", str(first.pk), "--exact")
    repeat = _train(TrainingRun.objects.get(rerun_of=first))

    assert repeat.status == RunStatus.SUCCEEDED, repeat.status_message
    assert repeat.exact and repeat.rerun_of_id == first.pk
    digest = _final(first).trainer_sha256
    assert _final(repeat).trainer_sha256 == digest
    assert f"Reproduced run #{first.pk}: the trainer wrote the same LoRA file" in (
        repeat.status_message
    )
    # The files themselves differ only in the run they name.
    assert _final(repeat).sha256 != _final(first).sha256
    assert read_metadata(_final(repeat).file.path)["lorastudio_run_id"] == str(repeat.pk)
    print(f"run #{first.pk} and exact repeat #{repeat.pk}: trainer's file SHA-256 {digest}")


def test_run_exactly_again_is_refused_when_a_caption_changed(student):
    first = _train(submit_demo(student))
    image = first.dataset.images.order_by("pk")[2]
    save_captions(first.dataset, {image.pk: "sks shape, but another caption"})

    with pytest.raises(CommandError, match=r"1 caption changed \(img2.png\)"):
        call_command("rerun", str(first.pk), "--exact")
    with pytest.raises(ValidationError, match="changed since run"):
        services.rerun(first, by=student, exact=True)
    assert not TrainingRun.objects.filter(rerun_of=first).exists()
    # "Run again" (with the dataset as it is now) is still allowed.
    assert services.rerun(first, by=student).exact is False


def test_a_caption_changed_while_the_repeat_waited_stops_it_before_the_trainer(student):
    first = _train(submit_demo(student))
    repeat = services.rerun(first, by=student, exact=True)
    image = first.dataset.images.order_by("pk")[0]
    save_captions(first.dataset, {image.pk: "changed in the queue"})

    repeat = _train(repeat)

    assert (repeat.status, repeat.failure_reason) == (RunStatus.FAILED, "inputs_changed")
    assert "1 caption changed (img0.png)" in repeat.status_message
    assert not repeat.artifacts.exists() and not repeat.argv
    assert not RunProvenance.objects.filter(run=repeat).exists()


def test_model_files_are_hashed_once_and_a_changed_file_stops_an_exact_repeat(student, tmp_path):
    first = _train(submit_replay(student, tmp_path, "sd15_train_sample_save"))
    assert first.status == RunStatus.SUCCEEDED, first.status_message
    checkpoint = first.base_model.checkpoint
    record = first.provenance
    expected = hashlib.sha256(b"not really a model").hexdigest()
    assert record.base_model["files"] == [
        {"role": "checkpoint", "path": checkpoint, "size_bytes": 18, "sha256": expected}
    ]
    assert read_metadata(_final(first).file.path)["lorastudio_base_model_sha256"] == (
        record.base_model_sha256
    )
    cached = FileHash.objects.get(path=checkpoint)
    assert (cached.node_id, cached.sha256) == (first.node_id, expected)

    with open(checkpoint, "wb") as fh:
        fh.write(b"another model, same path")
    # The node has not hashed the new file yet: the submit cannot know, the runner does.
    repeat = _train(services.rerun(first, by=student, exact=True))

    assert (repeat.status, repeat.failure_reason) == (RunStatus.FAILED, "inputs_changed")
    assert f"checkpoint {checkpoint}" in repeat.status_message
    # Now the node knows the new hash, and the next exact repeat is refused at submit.
    with pytest.raises(ValidationError, match="changed since run"):
        services.rerun(first, by=student, exact=True)


def test_rerun_exact_wait_follows_the_repeat_to_its_reproduced_file(student):
    """`manage.py rerun RUN_ID --exact --wait` while a worker (a thread here) trains it."""
    import io
    import threading
    import time

    first = _train(submit_demo(student))

    def worker():
        from django.db import connection

        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                repeat = TrainingRun.objects.filter(rerun_of=first, status="assigned").first()
                if repeat is not None:
                    runner.execute(repeat.pk)
                    return
                time.sleep(0.05)
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    out = io.StringIO()
    try:
        call_command("rerun", str(first.pk), "--exact", "--wait", stdout=out)
    finally:
        thread.join(timeout=120)
    text = out.getvalue()
    assert "repeats run" in text and "succeeded" in text
    assert f"Reproduced run #{first.pk}: the trainer wrote the same LoRA file" in text
