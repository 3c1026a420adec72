"""Register (or update) a base model and the files its architecture needs."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from sdscripts.architectures import ARCHITECTURES, FILE_ROLES
from training.models import BaseModel


def _needed_by(role: str) -> str:
    """The labels of the architectures that need (or take) a file role."""
    labels = [s.label for s in ARCHITECTURES.values() if role in (*s.files, *s.optional_files)]
    return ", ".join(labels) or "none"


class Command(BaseCommand):
    help = "Register a base model: name, architecture and its checkpoint / encoder paths."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="Unique name shown to users.")
        parser.add_argument("--architecture", required=True, choices=list(ARCHITECTURES))
        for role in FILE_ROLES.values():
            parser.add_argument(
                f"--{role.name.replace('_', '-')}",
                dest=role.name,
                default="",
                help=f"{role.label} path, absolute or relative to a node's models root "
                f"(used by: {_needed_by(role.name)}).",
            )

    def handle(self, *args, **opts):
        model = BaseModel.objects.filter(name=opts["name"]).first() or BaseModel(name=opts["name"])
        model.architecture = opts["architecture"]
        for field in FILE_ROLES:
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
