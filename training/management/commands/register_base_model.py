"""Register (or update) a base model and the files its architecture needs."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from training.models import BaseModel
from training.params import ARCHITECTURES


class Command(BaseCommand):
    help = "Register a base model: name, architecture and its checkpoint / encoder paths."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="Unique name shown to users.")
        parser.add_argument("--architecture", required=True, choices=ARCHITECTURES)
        parser.add_argument("--checkpoint", default="", help="Checkpoint path (or relative).")
        parser.add_argument("--clip-l", default="", help="CLIP-L path (SD 3.5, FLUX).")
        parser.add_argument("--clip-g", default="", help="CLIP-G path (SD 3.5).")
        parser.add_argument("--t5xxl", default="", help="T5-XXL path (SD 3.5, FLUX).")
        parser.add_argument("--ae", default="", help="FLUX autoencoder path.")
        parser.add_argument("--vae", default="", help="Optional VAE (SD 1.5, SDXL).")

    def handle(self, *args, **opts):
        model = BaseModel.objects.filter(name=opts["name"]).first() or BaseModel(name=opts["name"])
        model.architecture = opts["architecture"]
        for field in ("checkpoint", "clip_l", "clip_g", "t5xxl", "ae", "vae"):
            setattr(model, field, opts[field])
        try:
            model.full_clean()
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from None
        created = model.pk is None
        model.save()
        verb = "Registered" if created else "Updated"
        self.stdout.write(
            self.style.SUCCESS(f"{verb} base model {model.name} ({model.architecture})")
        )
