"""The run page's evaluation: the grid, evaluate, cancel, the pictures, the grid as one PNG,
"keep this epoch", and the live socket. Students reach their own runs' evaluations only."""

import io

import pytest
from asgiref.sync import async_to_sync
from django.urls import reverse
from PIL import Image

from tests.ws_helpers import communicator, session_cookie
from training import scheduler
from training.evaluation import runner
from training.evaluation.services import request_evaluation
from training.models import Evaluation

# The runner closes stale database connections on entry, as a django-q2 task does.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def rendered(finished_run):
    """The run's evaluation, rendered: epoch 2 and the base, seed 1, one prompt."""
    evaluation = request_evaluation(
        finished_run, by=finished_run.owner, epochs="last", strengths="0,1", seeds="1"
    )
    scheduler.dispatch()
    runner.execute(evaluation.pk)
    evaluation.refresh_from_db()
    assert evaluation.status == "succeeded", evaluation.status_message
    return evaluation


def test_run_page_shows_the_grid_with_its_pictures(student_client, rendered):
    run = rendered.run
    page = student_client.get(reverse("training:run-detail", args=[run.pk])).content.decode()
    for image in rendered.images.all():
        url = reverse("training:eval-image", args=[run.pk, image.pk])
        assert f'data-cell="{rendered.pk}/{image.cell}"' in page and f'src="{url}"' in page
    assert "base (0)" in page and "2 (final)" in page
    assert reverse("training:evaluation-grid", args=[run.pk, rendered.pk]) in page
    keep = reverse("training:keep-epoch", args=[run.pk, run.artifacts.get(kind="epoch").pk])
    assert keep in page and "Keep this epoch" in page
    assert reverse("training:run-evaluate", args=[run.pk]) in page
    image = rendered.images.first()
    response = student_client.get(reverse("training:eval-image", args=[run.pk, image.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"


def test_the_grid_downloads_as_one_picture(student_client, rendered):
    url = reverse("training:evaluation-grid", args=[rendered.run_id, rendered.pk])
    response = student_client.get(url)
    assert response.status_code == 200
    assert f"run-{rendered.run_id}-evaluation-{rendered.pk}.png" in response["Content-Disposition"]
    grid = Image.open(io.BytesIO(response.content))
    # Two blocks (the run's 2 prompts, seed 1): a label row, a header row, an epoch row of
    # 2 tiles (the base, strength 1) each.
    assert grid.size == (120 + 2 * (64 + 4), 2 * (2 * 28 + 64 + 4))


def test_another_student_gets_404_everywhere(client, other_student, rendered):
    client.force_login(other_student)
    run, image = rendered.run, rendered.images.first()
    artifact = run.artifacts.first()
    gets = [
        reverse("training:run-detail", args=[run.pk]),
        reverse("training:eval-image", args=[run.pk, image.pk]),
        reverse("training:evaluation-grid", args=[run.pk, rendered.pk]),
    ]
    posts = [
        reverse("training:run-evaluate", args=[run.pk]),
        reverse("training:evaluation-cancel", args=[run.pk, rendered.pk]),
        reverse("training:keep-epoch", args=[run.pk, artifact.pk]),
    ]
    assert [client.get(url).status_code for url in gets] == [404, 404, 404]
    assert [client.post(url).status_code for url in posts] == [404, 404, 404]
    # Nor through another run's address of their own.
    assert Evaluation.objects.count() == 1


def test_staff_see_every_evaluation(staff_client, rendered):
    image = rendered.images.first()
    url = reverse("training:eval-image", args=[rendered.run_id, image.pk])
    assert staff_client.get(url).status_code == 200


def test_evaluate_form_bad_input_says_why_and_changes_nothing(student_client, finished_run):
    url = reverse("training:run-evaluate", args=[finished_run.pk])
    data = {"epochs": "all", "strengths": "0,strong", "seeds": "1", "prompts": ""}
    response = student_client.post(url, data, follow=True)
    assert (
        "Not evaluated: strengths: &#x27;strong&#x27; is not a number" in response.content.decode()
    )
    assert not Evaluation.objects.exists()
    data |= {"strengths": "0,1", "epochs": "9"}
    response = student_client.post(url, data, follow=True)
    assert "no LoRA file of epoch 9" in response.content.decode()
    assert not Evaluation.objects.exists()


def test_evaluate_form_queues_it_with_typed_prompts(student_client, finished_run):
    url = reverse("training:run-evaluate", args=[finished_run.pk])
    data = {"epochs": "1", "strengths": "0.5", "seeds": "3", "prompts": "a sks hat\n"}
    response = student_client.post(url, data)
    assert response.status_code == 302 and response["Location"].endswith("#evaluation")
    evaluation = Evaluation.objects.get()
    assert (evaluation.epochs, evaluation.strengths, evaluation.seeds) == ([1], [0.5], [3])
    assert evaluation.prompts == ["a sks hat"] and evaluation.requested_by.username == "alice"


def test_cancel_and_keep_from_the_page(student_client, finished_run, comfy):
    evaluation = request_evaluation(finished_run, by=finished_run.owner)
    url = reverse("training:evaluation-cancel", args=[finished_run.pk, evaluation.pk])
    student_client.post(url)
    evaluation.refresh_from_db()
    assert evaluation.status == "cancelled"
    artifact = finished_run.artifacts.get(kind="epoch")
    response = student_client.post(
        reverse("training:keep-epoch", args=[finished_run.pk, artifact.pk]), follow=True
    )
    assert "will be published in place of the current LoRA" in response.content.decode()


def test_socket_sends_a_rendering_evaluations_pictures(student, other_student, finished_run):
    evaluation = request_evaluation(
        finished_run, by=student, epochs="last", strengths="0", seeds="1"
    )
    scheduler.dispatch()
    runner.execute(evaluation.pk)
    # Pretend it still renders: the page that connects now gets what it has so far.
    Evaluation.objects.filter(pk=evaluation.pk).update(status="running")
    path = f"/ws/runs/{finished_run.pk}/"

    async def messages(cookie):
        comm = communicator(path, cookie)
        connected, _ = await comm.connect()
        got = []
        while connected and not await comm.receive_nothing(timeout=0.5):
            got.append(await comm.receive_json_from())
        await comm.disconnect()
        return connected, got

    connected, got = async_to_sync(messages)(session_cookie(student))
    kinds = [m["type"] for m in got]
    assert connected and "evaluation" in kinds
    pictures = [m for m in got if m["type"] == "eval_image"]
    assert [m["cell"] for m in pictures] == ["0:0:1:0", "0:0:1:1"]  # the base, 2 prompts
    assert {m["evaluation"] for m in pictures} == {evaluation.pk}
    assert async_to_sync(messages)(session_cookie(other_student))[0] is False


def test_report_and_compare_show_the_grid_read_only(student_client, rendered):
    run = rendered.run
    urls = [reverse("training:eval-image", args=[run.pk, i.pk]) for i in rendered.images.all()]
    for page_url in (f"/runs/{run.pk}/report/", f"/runs/compare/?a={run.pk}&b={run.pk}"):
        page = student_client.get(page_url).content.decode()
        assert all(f'src="{url}"' in page for url in urls), page_url
        assert "Keep this epoch" not in page and "No evaluation grid yet" not in page
