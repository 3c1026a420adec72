"""Import a folder or .zip (flat or sd-scripts `10_sks dog/` layout) as a new dataset."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from datasets import services


class Command(BaseCommand):
    help = (
        "Create a dataset from a folder or a .zip archive. Understands sd-scripts' "
        "<repeats>_<class tokens>/ subfolders and flat folders; captions come from .txt or "
        ".caption files with the image's stem. Prints the new dataset's id last."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="A folder or a .zip archive.")
        parser.add_argument("--name", required=True, help="Name of the new dataset.")
        parser.add_argument("--owner", required=True, help="Username of the dataset's owner.")
        parser.add_argument("--repeats", type=int, help="Repeats (default: from folder or 10).")
        parser.add_argument("--trigger", help="Trigger word (default: from the folder name).")

    def handle(self, *args, **options):
        try:
            owner = get_user_model().objects.get(username=options["owner"])
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user named {options['owner']!r}.") from None
        if options["repeats"] is not None and not 1 <= options["repeats"] <= 1000:
            raise CommandError("--repeats must be between 1 and 1000.")
        try:
            dataset, report = services.import_folder(
                options["path"],
                name=options["name"],
                owner=owner,
                repeats=options["repeats"],
                trigger=options["trigger"],
            )
        except (services.IngestError, services.ArchiveRefused) as exc:
            raise CommandError(f"Nothing imported: {exc}") from None
        except ValidationError as exc:
            raise CommandError(f"Nothing imported: {'; '.join(exc.messages)}") from None
        lines = report.messages()
        self.stdout.write(self.style.SUCCESS(lines[0]))
        for line in lines[1:]:
            self.stdout.write(self.style.WARNING(line))
        self.stdout.write(
            f"Dataset “{dataset.name}”: {dataset.repeats} repeats, trigger "
            f"“{dataset.trigger_word}”, {dataset.image_count} image(s)."
        )
        self.stdout.write(str(dataset.pk))
