"""Write a dataset in sd-scripts' folder layout (`DEST/<repeats>_<trigger>/`)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from datasets.export import export_dataset
from datasets.models import Dataset


class Command(BaseCommand):
    help = (
        "Export a dataset to DEST/<repeats>_<trigger>/ with a .txt caption beside each image "
        "(hard links where possible) and print the matching dataset TOML subset."
    )

    def add_arguments(self, parser):
        parser.add_argument("dataset_id", type=int, help="Id of the dataset.")
        parser.add_argument("dest", type=Path, help="Destination folder (created if needed).")
        parser.add_argument("--reg", action="store_true", help="Mark it a regularisation set.")

    def handle(self, *args, **options):
        try:
            dataset = Dataset.objects.get(pk=options["dataset_id"])
        except Dataset.DoesNotExist:
            raise CommandError(f"No dataset with id {options['dataset_id']}.") from None
        dest = options["dest"]
        if dest.exists() and not dest.is_dir():
            raise CommandError(f"{dest} exists and is not a folder.")
        try:
            subset = export_dataset(dataset, dest, is_reg=options["reg"])
        except OSError as exc:
            raise CommandError(f"Could not write {dest}: {exc}") from None
        self.stdout.write(self.style.SUCCESS(f"Exported {subset.image_count} image(s)."))
        self.stdout.write("[[datasets.subsets]]")
        self.stdout.write(f"image_dir = {_toml_string(subset.image_dir)}")
        self.stdout.write(f"num_repeats = {subset.num_repeats}")
        self.stdout.write(f"class_tokens = {_toml_string(subset.class_tokens)}")
        self.stdout.write(f"caption_extension = {_toml_string(subset.caption_extension)}")
        if subset.is_reg:
            self.stdout.write("is_reg = true")


def _toml_string(value: str) -> str:
    """A TOML basic string."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
