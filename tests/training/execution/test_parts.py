"""The runner's parts without a trainer: the run log, LoRA files and the work directory."""

import pytest

from tests.factories import make_base_model, make_node, make_run, make_user
from tests.queue_helpers import make_image_dataset
from training.choices import ArtifactKind, FailureReason
from training.execution import runlog, workdir
from training.execution.errors import RunFailure
from training.execution.files import LoraCollector, artifact_kind
from training.execution.runlog import RunLogWriter
from training.models import RunLog

pytestmark = pytest.mark.django_db


def log_text(run) -> str:
    return "".join(RunLog.objects.filter(run=run).order_by("seq").values_list("text", flat=True))


def test_run_log_numbers_chunks_without_gaps_after_the_ones_already_written(student):
    run = make_run(owner=student)
    RunLog.objects.create(run=run, seq=1, text="from an earlier attempt\n")
    log = RunLogWriter(run.pk)
    for text in ("one", "two"):
        log.add(text)
    log.flush()
    log.flush()  # nothing queued: no empty chunk
    log.add("three")
    log.flush()
    assert list(RunLog.objects.filter(run=run).values_list("seq", "text")) == [
        (1, "from an earlier attempt\n"),
        (2, "one\ntwo\n"),
        (3, "three\n"),
    ]
    assert log.tail_text() == "one\ntwo\nthree"


def test_run_log_past_its_limit_keeps_the_tail_and_says_what_it_dropped(student, monkeypatch):
    monkeypatch.setattr(runlog, "MAX_LOG_BYTES", 10)
    run = make_run(owner=student)
    log = RunLogWriter(run.pk)
    for text in ("12345", "67890", "dropped", "Traceback: the end"):
        log.add(text)
    log.flush()
    assert log_text(run) == "12345\n67890\n[LoRA Studio: log limit reached; 2 lines not kept]\n"
    assert log.tail_text().endswith("Traceback: the end")  # the exit is still classified


@pytest.mark.parametrize(
    "name, expected",
    [
        ("lora-run3-000002.safetensors", (ArtifactKind.EPOCH, 2, None)),
        ("lora-run3-step00000120.safetensors", (ArtifactKind.STEP, None, 120)),
        ("lora-run3.safetensors", (ArtifactKind.FINAL, None, None)),
    ],
)
def test_artifact_kind_reads_sd_scripts_names(name, expected):
    assert artifact_kind(name) == expected


def test_a_lora_is_collected_once_it_is_complete_and_the_final_one_is_published(
    student, tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path / "media"
    run = make_run(owner=student)
    out = tmp_path / "output"
    out.mkdir()
    loras = LoraCollector(run, out, "lora-run1")
    first = out / "lora-run1-000001.safetensors"
    first.write_bytes(b"epoch one")
    loras.announced_file(str(first))
    assert not run.artifacts.exists()  # it may still be being written
    (out / "lora-run1.safetensors").write_bytes(b"final")
    loras.announced_file(str(out / "lora-run1.safetensors"))
    assert list(run.artifacts.values_list("kind", "epoch")) == [(ArtifactKind.EPOCH, 1)]

    final = loras.collect_all()
    assert sorted(run.artifacts.values_list("kind", flat=True)) == ["epoch", "final"]
    published = loras.publish(str(tmp_path / "Lora"))
    assert published == str(tmp_path / "Lora" / student.username / "lora-run1.safetensors")
    assert run.artifacts.get(kind="final").published_path == published
    assert final.read_bytes() == (tmp_path / "Lora" / student.username / final.name).read_bytes()
    assert loras.publish("") == ""  # a node without a LoRA folder publishes nothing


def test_work_directory_has_the_export_toml_prompts_and_argv_record(student, tmp_path):
    node = make_node(work_dir=str(tmp_path / "work"))
    run = make_run(
        owner=student,
        dataset=make_image_dataset(student, images=2),
        base_model=make_base_model(architecture="demo"),
        params={"resolution": 64, "train_batch_size": 1, "max_train_epochs": 1,
                "network_dim": 4, "network_alpha": 4.0, "learning_rate": 1e-3, "seed": 1,
                "save_every_n_epochs": 1, "sample_every_n_epochs": 1},
        sample_prompts="a red circle",
    )  # fmt: skip
    job, built = workdir.prepare(run, node)
    work = tmp_path / "work" / f"run-{run.pk}"
    assert job.work_dir == str(work)
    assert (work / "dataset.toml").read_text() == built.dataset_config
    assert (work / "sample_prompts.txt").read_text() == "a red circle --w 64 --h 64 --s 8 --d 1\n"
    assert '"--dataset_config"' in (work / "argv.json").read_text()
    images = list((work / "data" / "train").glob("*/*.png"))
    assert len(images) == 2


def test_work_directory_refuses_a_node_without_the_model_files(student, tmp_path):
    node = make_node(work_dir=str(tmp_path / "work"), models_root=str(tmp_path / "models"))
    run = make_run(
        owner=make_user(),
        dataset=make_image_dataset(student, images=1),
        base_model=make_base_model(architecture="sd15", checkpoint="sd15.safetensors"),
        params={"resolution": 512, "train_batch_size": 1},
    )
    with pytest.raises(RunFailure) as failure:
        workdir.prepare(run, node)
    assert failure.value.reason == FailureReason.MISSING_FILES
    assert "sd15.safetensors" in failure.value.message


def test_saved_training_states_are_kept_as_zips_beside_the_loras(student, tmp_path, settings):
    import zipfile

    settings.MEDIA_ROOT = tmp_path / "media"
    run = make_run(owner=student)
    out = tmp_path / "output"
    for folder in ("lora-run1-000001-state", "lora-run1-state"):
        (out / folder).mkdir(parents=True)
        (out / folder / "optimizer.bin").write_bytes(b"state of " + folder.encode())
    (out / "lora-run1.safetensors").write_bytes(b"final")

    LoraCollector(run, out, "lora-run1").collect_all()
    states = list(run.artifacts.filter(kind=ArtifactKind.STATE).order_by("pk"))
    assert [s.epoch for s in states] == [1, None]
    with zipfile.ZipFile(states[0].file.path) as zf:
        assert zf.read("lora-run1-000001-state/optimizer.bin") == b"state of lora-run1-000001-state"
    assert states[1].file.name == f"runs/{run.pk}/lora-run1-state.zip"
