"""The evaluation runner: the django-q2 task body that renders one evaluation on its node.

Like the run's runner: re-check the status on entry, beat a heartbeat, and always end in a
terminal status (or back in the queue); in `finally` remove the staged LoRA copies and
dispatch again. Its run is never changed: a failed evaluation leaves a succeeded run so.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import traceback
from pathlib import Path

from django.core.files.base import ContentFile
from django.db import close_old_connections
from django.db.models import F
from django.utils import timezone
from PIL import Image

from training import live
from training.choices import EvalFailure, EvalStatus, InferenceBackend
from training.evaluation import render, server
from training.evaluation.clients import InferenceError
from training.evaluation.lifecycle import EvalTransitionError, move
from training.evaluation.render import Cell
from training.execution.watch import Heartbeat
from training.models import Evaluation, EvaluationImage, LoraArtifact
from training.models.evaluation import BASE_EPOCH

logger = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0


class Cancelled(Exception):
    """Someone cancelled the evaluation while it rendered."""


def cells(evaluation: Evaluation) -> list[Cell]:
    """The grid in rendering order: the base model first (strength 0, once per seed and
    prompt), then per checkpoint and strength, so the server loads each LoRA once and only
    re-samples for the seeds and re-encodes for the prompts."""
    out: list[Cell] = []
    checkpoints = list(evaluation.checkpoints)
    prompts = list(enumerate(evaluation.prompts))
    if 0 in evaluation.strengths and checkpoints:
        for index, prompt in prompts:
            for seed in evaluation.seeds:
                out.append(Cell(BASE_EPOCH, checkpoints[0], 0.0, seed, index, prompt))
    for checkpoint in checkpoints:
        for strength in (s for s in evaluation.strengths if s != 0):
            for index, prompt in prompts:
                for seed in evaluation.seeds:
                    out.append(Cell(checkpoint["epoch"], checkpoint, strength, seed, index, prompt))
    return out


def is_png(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            return image.format in ("PNG", "JPEG", "WEBP")
    except Exception:  # Pillow raises several kinds for what is not a picture
        return False


class EvaluationRunner:
    """Renders one evaluation; `run_all()` always ends it."""

    def __init__(self, evaluation: Evaluation):
        self.evaluation = evaluation
        self.staged: list[Path] = []
        self.last_push = 0.0
        self.last_cancel_check = 0.0

    def run_all(self) -> str:
        evaluation = self.evaluation
        node = evaluation.node
        server_name = InferenceBackend(node.inference_backend).label
        try:
            move(
                evaluation,
                EvalStatus.RUNNING,
                expect=EvalStatus.ASSIGNED,
                note=f"Rendering on {node.name}'s {server_name}.",
                changes={"heartbeat_at": timezone.now(), "backend": node.inference_backend},
            )
            started = time.monotonic()
            with Heartbeat(evaluation.pk, model=Evaluation):
                done = self.render_all()
            seconds = time.monotonic() - started
            per = f" ({seconds / done:.1f} s an image)" if done else ""
            self._end(EvalStatus.SUCCEEDED, note=f"{done} images in {seconds:.0f} s{per}.")
            return EvalStatus.SUCCEEDED
        except Cancelled:
            self._end(EvalStatus.CANCELLED, note="Cancelled while rendering.")
            return EvalStatus.CANCELLED
        except InferenceError as exc:
            self._end(EvalStatus.FAILED, reason=exc.reason, note=exc.message)
            return EvalStatus.FAILED
        except TimeoutError:
            limit = render.image_timeout()
            note = (
                f"{server_name} did not finish an image within {limit:g} s "
                "(LORASTUDIO_EVAL_IMAGE_TIMEOUT_SECONDS). Is it busy with other work, or "
                "rendering on the CPU? Evaluate again with fewer images, or raise the limit."
            )
            self._end(EvalStatus.FAILED, reason=EvalFailure.TIMEOUT, note=note)
            return EvalStatus.FAILED
        except Exception as exc:
            logger.exception("Evaluation %s crashed", evaluation.pk)
            last = traceback.format_exc().strip().splitlines()[-1]
            note = f"The evaluation runner failed: {type(exc).__name__}: {exc} ({last})"
            self._end(EvalStatus.FAILED, reason=EvalFailure.ERROR, note=note)
            return EvalStatus.FAILED
        finally:
            self.cleanup()

    def render_all(self) -> int:
        """Stage the LoRA files, resolve the names, render each missing cell; how many."""
        evaluation = self.evaluation
        renderer = render.renderer_for(evaluation)
        self.check_server(renderer)
        folder = evaluation.node.evaluation_lora_dir
        staged = {}
        artifacts = LoraArtifact.objects.in_bulk([c["artifact"] for c in evaluation.checkpoints])
        for checkpoint in evaluation.checkpoints:
            artifact = artifacts.get(checkpoint["artifact"])
            source = Path(artifact.file.path) if artifact is not None else None
            if source is None or not source.is_file():
                raise InferenceError(
                    EvalFailure.MISSING_FILES,
                    f"The LoRA file of epoch {checkpoint['epoch']} is gone from the server's "
                    "media folder; it cannot be evaluated.",
                )
            name = render.stage_name(evaluation.run_id, checkpoint, artifact.sha256)
            staged[checkpoint["epoch"]] = path = render.stage(folder, name, source)
            self.staged.append(path)
        renderer.resolve(staged, folder)
        have = set(
            evaluation.images.values_list("epoch", "strength", "seed", "prompt_index")
        )  # an evaluation sent back to the queue keeps what it rendered
        socket_of = getattr(renderer.client, "progress_socket", None)
        done = 0
        with socket_of() if socket_of else contextlib.nullcontext() as socket:
            for cell in cells(evaluation):
                if (cell.epoch, cell.strength, cell.seed, cell.prompt_index) in have:
                    continue
                self.check_cancel()
                started = time.monotonic()
                data = renderer.render(
                    cell,
                    timeout=render.image_timeout(),
                    socket=socket,
                    on_step=self.on_step,
                    idle=self.check_cancel_now_and_then,
                )
                if not is_png(data):
                    raise InferenceError(
                        EvalFailure.WORKFLOW_ERROR,
                        f"{renderer.client.name} answered something that is not a picture.",
                    )
                self.store(cell, data, time.monotonic() - started)
                done += 1
        return done

    def check_server(self, renderer) -> None:
        """Whether the server answers. A node that stops its server for training may be
        starting it right now (the run's runner waits for it too): wait as long as it."""
        node = self.evaluation.node
        try:
            renderer.check()
        except InferenceError as exc:
            if exc.reason != EvalFailure.SERVER_DOWN or not server.stops_for_training(node):
                raise
            if server.wait_until_up(server.check_url(node), node.inference_start_timeout) is None:
                raise
            renderer.check()

    def store(self, cell: Cell, data: bytes, seconds: float) -> EvaluationImage:
        evaluation = self.evaluation
        image = EvaluationImage(
            evaluation=evaluation,
            run_id=evaluation.run_id,
            artifact_id=None if cell.epoch == BASE_EPOCH else cell.checkpoint["artifact"],
            epoch=cell.epoch,
            strength=cell.strength,
            seed=cell.seed,
            prompt_index=cell.prompt_index,
            prompt=cell.prompt,
            seconds=round(seconds, 3),
        )
        strength = format(cell.strength, "g").replace("-", "m")
        name = f"p{cell.prompt_index}-d{cell.seed}-e{cell.epoch}-s{strength}.png"
        image.file.save(name, ContentFile(data), save=False)
        image.save()
        Evaluation.objects.filter(pk=evaluation.pk).update(
            done_images=F("done_images") + 1, heartbeat_at=timezone.now()
        )
        evaluation.done_images += 1
        live.send_eval_image(image)
        now = time.monotonic()
        if now - self.last_push >= PROGRESS_EVERY_S or evaluation.done_images >= (
            evaluation.total_images
        ):
            self.last_push = now
            live.send_evaluation(evaluation.run_id, live.evaluation_state(evaluation))
        return image

    def on_step(self, value: int, total: int) -> None:
        """The server's sampler step of the current picture, pushed at most once a second."""
        now = time.monotonic()
        if now - self.last_push >= PROGRESS_EVERY_S:
            self.last_push = now
            state = live.evaluation_state(self.evaluation)
            live.send_evaluation(self.evaluation.run_id, {**state, "step": [value, total]})

    def check_cancel(self) -> None:
        if Evaluation.objects.filter(
            pk=self.evaluation.pk, cancel_requested_at__isnull=False
        ).exists():
            raise Cancelled

    def check_cancel_now_and_then(self) -> None:
        now = time.monotonic()
        if now - self.last_cancel_check >= 1.0:
            self.last_cancel_check = now
            self.check_cancel()

    def _end(self, to: str, *, reason: str = "", note: str = "") -> None:
        try:
            move(self.evaluation, to, reason=reason, note=note)
        except EvalTransitionError as exc:
            # E.g. the reaper declared the worker lost meanwhile: its verdict stands.
            logger.warning("Evaluation %s could not end as %s: %s", self.evaluation.pk, to, exc)

    def cleanup(self) -> None:
        """Always: remove the staged LoRA copies, then dispatch again."""
        render.unstage(self.staged)
        try:
            from training.scheduler import dispatch

            dispatch()
        except Exception:
            logger.exception("Dispatch after evaluation %s failed", self.evaluation.pk)


def execute(evaluation_id: int) -> str:
    """Render evaluation `evaluation_id` if it is still assigned; how it ended."""
    close_old_connections()
    evaluation = (
        Evaluation.objects.select_related("run__base_model", "node", "gpu")
        .filter(pk=evaluation_id)
        .first()
    )
    if evaluation is None or evaluation.status != EvalStatus.ASSIGNED:
        logger.info("Evaluation %s is not assigned; nothing to do", evaluation_id)
        return "skipped"
    return EvaluationRunner(evaluation).run_all()
