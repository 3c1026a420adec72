"""Run a run again from the terminal: as it is now, or exactly (`--exact`) as it was."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from sdscripts.params import ParamError
from training import services
from training.management.terminal import follow_until_succeeded, refusal_text
from training.models import TrainingRun
from training.provenance.exact import reproduction_note


class Command(BaseCommand):
    help = (
        "Submit a run again with its dataset, model, preset and parameters. With --exact, "
        "the same dataset content, parameters and model files it trained with; refused with "
        "the reason when one of them changed since."
    )

    def add_arguments(self, parser):
        parser.add_argument("run_id", type=int, help="The run to repeat.")
        parser.add_argument(
            "--exact",
            action="store_true",
            help="Its very inputs (checked against its provenance), else refuse.",
        )
        parser.add_argument(
            "--wait",
            action="store_true",
            help="Follow the new run; exit non-zero unless it succeeds.",
        )

    def handle(self, *args, **opts):
        run = TrainingRun.objects.filter(pk=opts["run_id"]).first()
        if run is None:
            raise CommandError(f"There is no run #{opts['run_id']}.")
        how = "exactly again" if opts["exact"] else "again"
        try:
            new = services.rerun(run, by=None, exact=opts["exact"])
        except ParamError as exc:
            raise CommandError(f"Run #{run.pk} cannot run again: {refusal_text(exc)}") from None
        except (ValidationError, PermissionDenied) as exc:
            raise CommandError(f"Run #{run.pk} cannot run {how}: {refusal_text(exc)}") from None
        self.stdout.write(
            self.style.SUCCESS(f"Run #{new.pk} repeats run #{run.pk} {how}; it is {new.status}.")
        )
        if not opts["wait"]:
            return
        new = follow_until_succeeded(new.pk, write=self.stdout.write)
        if note := reproduction_note(new):
            self.stdout.write(self.style.SUCCESS(note))
