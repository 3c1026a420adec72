"""Start a demo run (CPU, built-in toy trainer) so a newcomer sees training happen."""

import io

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from PIL import Image, ImageDraw

from datasets.models import Dataset
from datasets.services import add_images, create_dataset, save_captions
from training import services
from training.choices import ACTIVE, Architecture
from training.follow import follow_run
from training.models import BaseModel, Preset, TrainingRun
from training.nodes import agent

DEMO_MODEL = "Demo toy model (CPU)"
DEMO_DATASET = "Demo shapes"
DEMO_PARAMS = {"max_train_epochs": 3, "resolution": 32, "network_dim": 4}
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 80, 220)}
SHAPES = ("circle", "square")


def shape_png(colour: str, shape: str, size: int = 64) -> bytes:
    """A coloured shape on a light background, as PNG bytes."""
    image = Image.new("RGB", (size, size), (235, 235, 230))
    draw = ImageDraw.Draw(image)
    box = (size // 5, size // 5, size - size // 5, size - size // 5)
    (draw.ellipse if shape == "circle" else draw.rectangle)(box, fill=COLOURS[colour])
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class Command(BaseCommand):
    help = (
        "Create (or reuse) the demo node, the demo base model and a small captioned dataset, "
        "then submit a demo run (CPU toy trainer, not sd-scripts) and print its id and page."
    )

    def add_arguments(self, parser):
        parser.add_argument("--owner", help="Username owning the demo (default: first superuser).")
        parser.add_argument("--wait", action="store_true", help="Follow the run until it ends.")
        parser.add_argument("--new", action="store_true", help="Submit even if one is active.")

    def handle(self, *args, **opts):
        owner = self._owner(opts["owner"])
        agent.beat(settings.LORASTUDIO_NODE)  # this machine is the demo node
        with transaction.atomic():
            base, _ = BaseModel.objects.get_or_create(
                name=DEMO_MODEL,
                defaults={"architecture": Architecture.DEMO, "notes": "Built-in CPU demo."},
            )
            active = TrainingRun.objects.filter(
                owner=owner, base_model=base, status__in=ACTIVE
            ).first()
        if active is not None and not opts["new"]:
            run = active
            self.stdout.write(f"A demo run is already {run.get_status_display().lower()}.")
        else:
            preset = Preset.objects.filter(architecture=Architecture.DEMO, enabled=True).first()
            run = services.submit_run(
                owner,
                dataset=self._dataset(owner),
                base_model=base,
                preset=preset,
                params={} if preset else dict(DEMO_PARAMS),
                name="demo",
                sample_prompts="sks red circle\nsks blue square",
            )
        self.stdout.write(self.style.SUCCESS(f"Demo run #{run.pk}: /runs/{run.pk}/"))
        if opts["wait"]:
            run = follow_run(run.pk, write=self.stdout.write)
            if run.status != "succeeded":
                raise CommandError(f"Demo run #{run.pk} ended {run.status}.")
            self.stdout.write(
                self.style.SUCCESS(
                    f"Demo run #{run.pk} succeeded: its page /runs/{run.pk}/ shows the log, "
                    "the loss chart, the samples and the LoRA to download."
                )
            )

    def _owner(self, username):
        users = get_user_model().objects
        if username:
            owner = users.filter(username=username).first()
            if owner is None:
                raise CommandError(f"There is no user {username!r}.")
            return owner
        owner = users.filter(is_superuser=True).order_by("pk").first()
        if owner is None:
            owner, _ = users.get_or_create(username="demo", defaults={"is_staff": True})
        return owner

    def _dataset(self, owner):
        dataset = Dataset.objects.filter(owner=owner, name=DEMO_DATASET).first()
        if dataset is None:
            dataset = create_dataset(owner, name=DEMO_DATASET, trigger_word="sks", repeats=5)
        if not dataset.images.exists():
            pairs = [(c, s) for c in COLOURS for s in SHAPES]
            add_images(dataset, [(f"{c}-{s}.png", shape_png(c, s)) for c, s in pairs])
            captions = {}
            for image in dataset.images.all():
                colour, shape = image.original_name.removesuffix(".png").split("-")
                captions[image.pk] = f"sks {colour} {shape}"
            save_captions(dataset, captions)
        return dataset
