"""Services that change evaluations and what a run publishes: request and cancel an
evaluation, keep an epoch (republish its file). Pages, the admin, `manage.py evaluate` and
the runner all come through here.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from lorastudio.safepath import inside, safe_name
from training.choices import ArtifactKind, EvalStatus, EventKind
from training.evaluation.lifecycle import move
from training.evaluation.planning import EvalPlan, checkpoints_of, plan_evaluation
from training.lifecycle import record_action
from training.models import Evaluation, LoraArtifact, TrainingRun

logger = logging.getLogger(__name__)


def _may_change(run: TrainingRun, by) -> None:
    if by is not None and not (by.is_staff or by.pk == run.owner_id):
        raise PermissionDenied("You can only evaluate your own runs.")


def _dispatch_soon() -> None:
    def go() -> None:
        from training.scheduler import dispatch

        try:
            dispatch()
        except Exception:
            logger.exception("Dispatch after an evaluation request failed")

    transaction.on_commit(go)


@transaction.atomic
def request_evaluation(
    run: TrainingRun,
    *,
    by=None,
    epochs: str | None = "all",
    strengths=None,
    seeds=None,
    prompts=None,
    after_training: bool = False,
) -> Evaluation:
    """Plan an evaluation of `run` and queue it; dispatch after commit.

    Bad input raises OptionError (a ValueError naming the option); a plan with blocking
    reasons raises ValidationError with all of them; nothing is written then.
    """
    _may_change(run, by)
    # One request per run at a time: lock the run's row while checking and creating.
    run = (
        TrainingRun.objects.select_for_update(of=("self",))
        .select_related("base_model")
        .get(pk=run.pk)
    )
    plan: EvalPlan = plan_evaluation(
        run, epochs=epochs, strengths=strengths, seeds=seeds, prompts=prompts, auto=after_training
    )
    if plan.blocking:
        raise ValidationError(list(plan.blocking))
    evaluation = Evaluation.objects.create(
        run=run,
        requested_by=by if getattr(by, "is_authenticated", False) else None,
        after_training=after_training,
        checkpoints=[c.record() for c in plan.checkpoints],
        strengths=plan.strengths,
        seeds=plan.seeds,
        prompts=plan.prompts,
        settings=plan.settings,
        vram_mib=plan.vram_mib,
        total_images=plan.total_images,
        status_message="Waiting for the inference server.",
    )
    who = " after training" if after_training else (f" by {by}" if by is not None else "")
    record_action(
        run,
        by=by,
        kind=EventKind.EVALUATION,
        note=f"Evaluation #{evaluation.pk} requested{who}: {plan.summary()}.",
    )
    if not after_training:  # the run's runner dispatches once its server is back
        _dispatch_soon()
    return evaluation


def request_after_training(run: TrainingRun) -> Evaluation | None:
    """The run's own evaluation when its training succeeded (run setting "evaluate after
    training", on a node with an inference server); None, with the reason logged, when not."""
    if not run.evaluate_after or run.node is None or not run.node.has_inference_server:
        return None
    if run.base_model.spec.inference is None:
        return None
    try:
        return request_evaluation(run, after_training=True)
    except (ValidationError, ValueError) as exc:
        reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        record_action(run, kind=EventKind.EVALUATION, note=f"Not evaluated: {reason}.")
        return None


@transaction.atomic
def cancel_evaluation(evaluation: Evaluation, *, by=None) -> Evaluation:
    """Cancel a queued evaluation at once; ask a rendering one's runner to stop."""
    _may_change(evaluation.run, by)
    evaluation.refresh_from_db()
    if evaluation.is_terminal:
        raise ValidationError(f"Evaluation #{evaluation.pk} has already ended.")
    who = f" by {by}" if by is not None else ""
    if evaluation.status == EvalStatus.RUNNING:
        if evaluation.cancel_requested_at is None:
            now = timezone.now()
            Evaluation.objects.filter(pk=evaluation.pk).update(cancel_requested_at=now)
            evaluation.cancel_requested_at = now
            record_action(
                evaluation.run,
                by=by,
                kind=EventKind.EVALUATION,
                note=f"Evaluation #{evaluation.pk}: cancel requested{who}.",
            )
        return evaluation
    move(evaluation, EvalStatus.CANCELLED, by=by, expect=evaluation.status, note=f"Cancelled{who}.")
    _dispatch_soon()
    return evaluation


def published_path(run: TrainingRun) -> Path | None:
    """Where the run's LoRA is published on its node: the publish folder / owner / the final
    file's name (what `LoraCollector.publish` wrote); None when its node has no such folder."""
    final = run.artifacts.filter(kind=ArtifactKind.FINAL).first()
    if final is None or run.node is None or not run.node.lora_dir:
        return None
    if final.published_path:
        return Path(final.published_path)
    folder = safe_name(run.owner.username, fallback=f"user{run.owner_id}")
    return inside(run.node.lora_dir, folder, Path(final.file.name).name)


@transaction.atomic
def keep_epoch(run: TrainingRun, artifact: LoraArtifact, *, by=None) -> LoraArtifact:
    """Make `artifact` the run's published LoRA; its node's worker copies it after commit."""
    _may_change(run, by)
    if artifact.run_id != run.pk or artifact.kind not in (ArtifactKind.EPOCH, ArtifactKind.FINAL):
        raise ValidationError("Only an epoch's LoRA file of this run can be kept.")
    if published_path(run) is None:
        raise ValidationError(
            f"Run #{run.pk}'s node has no LoRA publish folder: there is nowhere to publish it."
        )
    epoch = next((c.epoch for c in checkpoints_of(run) if c.artifact.pk == artifact.pk), None)
    record_action(run, by=by, note=f"Keep epoch {epoch} ({artifact}) requested by {by}.")
    node = run.node.name
    transaction.on_commit(lambda: _enqueue_publish(artifact.pk, node))
    return artifact


def _enqueue_publish(artifact_id: int, node_name: str) -> None:
    from django_q.tasks import async_task

    async_task(
        "training.tasks.publish_artifact",
        artifact_id,
        cluster=node_name,
        task_name=f"publish-{artifact_id}",
        timeout=3600,
    )


def publish_artifact(artifact_id: int) -> str:
    """On the run's node: copy the artifact over the published LoRA (whole, then renamed into
    place), mark it published, and ask ComfyUI to drop its cache of the old file."""
    artifact = LoraArtifact.objects.select_related("run__node", "run__owner").get(pk=artifact_id)
    run = artifact.run
    dest = published_path(run)
    if dest is None:
        return "no publish folder"
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    shutil.copyfile(Path(settings.MEDIA_ROOT) / artifact.file.name, partial)
    os.replace(partial, dest)
    with transaction.atomic():
        LoraArtifact.objects.filter(run=run).exclude(pk=artifact.pk).update(published_path="")
        LoraArtifact.objects.filter(pk=artifact.pk).update(published_path=str(dest))
        note = f"Published {artifact} as {dest}."
        if run.node.comfyui_url:
            note += " " + _drop_comfyui_cache(run.node.comfyui_url)
        record_action(run, note=note)
    return str(dest)


def _drop_comfyui_cache(url: str) -> str:
    """ComfyUI keeps serving a LoRA replaced under the same name from its cache until /free."""
    from training.evaluation.clients import ComfyUI, InferenceError

    try:
        ComfyUI(url, timeout=5.0).free()
    except InferenceError:
        return "ComfyUI did not answer: it may use the old file until it reloads its models."
    return "ComfyUI was asked to reload it."
