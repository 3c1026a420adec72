"""List runs as a table."""

from django.core.management.base import BaseCommand, CommandError

from training.choices import ACTIVE, RunStatus
from training.follow import progress_bar
from training.models import TrainingRun
from training.scheduler import queue_positions


class Command(BaseCommand):
    help = (
        "Show runs: id, owner, model, status, place, progress, why queued runs wait and how "
        "finished runs ended."
    )

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="Finished runs too.")
        parser.add_argument("--status", choices=RunStatus.values, help="Only this status.")
        parser.add_argument("--limit", type=int, default=50, help="At most this many rows.")

    def handle(self, *args, **opts):
        if opts["limit"] < 1:
            raise CommandError("--limit must be at least 1.")
        runs = TrainingRun.objects.select_related("owner", "base_model", "node", "gpu")
        if opts["status"]:
            runs = runs.filter(status=opts["status"])
        elif not opts["all"]:
            runs = runs.filter(status__in=ACTIVE)
        runs = list(runs.order_by("-created_at")[: opts["limit"]])
        positions = queue_positions()
        header = f"{'ID':>5}  {'OWNER':<12} {'MODEL':<18} {'STATUS':<17} {'WHERE':<16} PROGRESS"
        self.stdout.write(header)
        for run in runs:
            where = run.node.name if run.node_id else "-"
            if run.gpu_id:
                where += f":{run.gpu.index}"
            if run.pk in positions:
                detail = f"#{positions[run.pk]} in queue. {run.status_message}"
            elif run.is_terminal:
                # The whole message: it is what says why a run failed and what to do.
                detail = ": ".join(filter(None, (run.failure_reason, run.status_message)))
            else:
                detail = progress_bar(run.step, run.total_steps, width=20)
            self.stdout.write(
                f"{run.pk:>5}  {run.owner.username[:12]:<12} {run.base_model.name[:18]:<18} "
                f"{run.status:<17} {where[:16]:<16} {detail}"
            )
        if not runs:
            self.stdout.write("No runs.")
