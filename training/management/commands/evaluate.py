"""Evaluate a finished run on its node's ComfyUI/SwarmUI: epochs × strengths × seeds × prompts."""

from __future__ import annotations

import time

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from training.choices import EvalStatus
from training.evaluation.options import OptionError
from training.evaluation.services import request_evaluation
from training.models import Evaluation, TrainingRun

POLL_S = 0.5


class Command(BaseCommand):
    help = (
        "Queue an evaluation of a succeeded run: its LoRA files rendered by a node's ComfyUI "
        "or SwarmUI at several strengths (0 = the base model), seeds and prompts. Exits 0 when "
        "it was queued (with --wait: when it succeeded)."
    )

    def add_arguments(self, parser):
        parser.add_argument("run_id", help="The run's number.")
        parser.add_argument(
            "--epochs", default="all", help="all (default), last, or epoch numbers: 1,2."
        )
        parser.add_argument("--strengths", help="LoRA strengths (default 0,0.5,0.8,1).")
        parser.add_argument("--seeds", help="Fixed seeds (default 1,2).")
        parser.add_argument(
            "--prompt", action="append", default=[], metavar="TEXT",
            help="A prompt (repeatable, at most 4; default: the run's sample prompts).",
        )  # fmt: skip
        parser.add_argument(
            "--wait", action="store_true", help="Follow it; exit non-zero unless it succeeds."
        )

    def handle(self, *args, **opts):
        if not str(opts["run_id"]).isdigit():
            raise CommandError(f"run_id: {opts['run_id']!r} is not a run number")
        run = TrainingRun.objects.select_related("base_model").filter(pk=opts["run_id"]).first()
        if run is None:
            raise CommandError(f"run_id: there is no run #{opts['run_id']}")
        try:
            evaluation = request_evaluation(
                run,
                epochs=opts["epochs"],
                strengths=opts["strengths"],
                seeds=opts["seeds"],
                prompts=opts["prompt"],
            )
        except OptionError as exc:
            raise CommandError(str(exc)) from None
        except (ValidationError, PermissionDenied) as exc:
            reasons = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
            raise CommandError("Not evaluated: " + "; ".join(reasons)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Evaluation #{evaluation.pk} of run #{run.pk} is queued: "
                f"{evaluation.total_images} images."
            )
        )
        if opts["wait"]:
            self._follow(evaluation.pk)

    def _follow(self, evaluation_id: int) -> None:
        last = ""
        started = time.monotonic()
        while True:
            evaluation = Evaluation.objects.get(pk=evaluation_id)
            line = (
                f"Evaluation #{evaluation.pk} {evaluation.get_status_display().lower()}: "
                f"{evaluation.done_images}/{evaluation.total_images} images"
            )
            if line != last:
                self.stdout.write(f"[{time.monotonic() - started:6.1f} s] {line}")
                last = line
            if evaluation.is_terminal:
                break
            time.sleep(POLL_S)
        if evaluation.status_message:
            self.stdout.write(evaluation.status_message)
        if evaluation.status != EvalStatus.SUCCEEDED:
            reason = f" ({evaluation.failure_reason})" if evaluation.failure_reason else ""
            raise CommandError(
                f"Evaluation #{evaluation.pk} ended {evaluation.status}{reason}: "
                f"{evaluation.status_message}"
            )
