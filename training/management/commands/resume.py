"""Resume a failed or cancelled run from its last saved training state."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from sdscripts.params import ParamError
from training.management.terminal import follow_until_succeeded, refusal_text
from training.models import TrainingRun
from training.resume import resume_run


class Command(BaseCommand):
    help = (
        "Submit a run that continues a failed or cancelled run from the training state it "
        "saved last (runs save one per saved epoch with save_state); print its id."
    )

    def add_arguments(self, parser):
        parser.add_argument("run_id", type=int, help="The failed or cancelled run.")
        parser.add_argument(
            "--wait",
            action="store_true",
            help="Follow the new run; exit non-zero unless it succeeds.",
        )

    def handle(self, *args, **opts):
        run = TrainingRun.objects.filter(pk=opts["run_id"]).first()
        if run is None:
            raise CommandError(f"There is no run #{opts['run_id']}.")
        try:
            new = resume_run(run, by=None)
        except ParamError as exc:
            raise CommandError(f"Run #{run.pk} cannot be resumed: {refusal_text(exc)}") from None
        except (ValidationError, PermissionDenied) as exc:
            raise CommandError(refusal_text(exc)) from None
        self.stderr.write(
            f"Run #{new.pk} resumes run #{run.pk} after epoch {new.resume_epoch}; "
            f"it is {new.status}."
        )
        self.stdout.write(str(new.pk))
        if not opts["wait"]:
            return
        new = follow_until_succeeded(new.pk, write=self.stderr.write)
        self.stderr.write(self.style.SUCCESS(f"Run #{new.pk} succeeded."))
