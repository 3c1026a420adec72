"""Cancel a run from the terminal."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from training import services
from training.models import TrainingRun


class Command(BaseCommand):
    help = "Cancel a run: at once when it waits, within seconds when it is training."

    def add_arguments(self, parser):
        parser.add_argument("run_id", type=int, help="The run's id.")

    def handle(self, *args, **opts):
        run = TrainingRun.objects.filter(pk=opts["run_id"]).first()
        if run is None:
            raise CommandError(f"There is no run #{opts['run_id']}.")
        try:
            services.cancel_run(run, by=None)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        run.refresh_from_db()
        if run.is_terminal:
            self.stdout.write(self.style.SUCCESS(f"Run #{run.pk} is cancelled."))
        else:
            self.stdout.write(f"Run #{run.pk}: cancel requested; its trainer stops within 5 s.")
