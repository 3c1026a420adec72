"""Find model files under a folder and register them as base models."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from sdscripts.architectures import FILE_ROLES
from training.models import BaseModel
from training.nodes.detect import detect
from training.nodes.scan import list_tree


class Command(BaseCommand):
    help = (
        "Look for checkpoints of every architecture LoRA Studio knows (and the encoders they "
        "need) under "
        "the usual SwarmUI/ComfyUI model folders in ROOT and register them as base models, "
        "with paths relative to ROOT (use ROOT as the node's models root)."
    )

    def add_arguments(self, parser):
        parser.add_argument("root", type=Path, help="Folder to search, e.g. your home folder.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Print what would be registered only."
        )

    def handle(self, *args, **opts):
        root = opts["root"].expanduser()
        if not root.is_dir():
            raise CommandError(f"{root} is not a folder")
        proposals = detect(list_tree(root)).base_models
        if not proposals:
            self.stdout.write(f"No model checkpoints found under {root}")
        verb = "Would register" if opts["dry_run"] else "Registered"
        registered = 0
        for p in proposals:
            files = ", ".join(f"{role}={path}" for role, path in p.files.items())
            if p.missing:
                self.stdout.write(
                    self.style.WARNING(
                        f"Skipped {p.name} ({p.architecture}): no {', '.join(p.missing)} found"
                    )
                )
                continue
            if not opts["dry_run"]:
                self._save(p)
            registered += 1
            self.stdout.write(self.style.SUCCESS(f"{verb} {p.name} ({p.architecture}): {files}"))
        self.stdout.write(f"{registered} base model(s), paths relative to {root}")

    def _save(self, proposal) -> None:
        model = BaseModel.objects.filter(name=proposal.name).first() or BaseModel(
            name=proposal.name
        )
        wanted = {"architecture": proposal.architecture}
        wanted |= {role: proposal.files.get(role, "") for role in FILE_ROLES if role != "vae"}
        if model.pk and all(getattr(model, k) == v for k, v in wanted.items()):
            return  # unchanged: no new history row on a second scan
        for field, value in wanted.items():
            setattr(model, field, value)
        try:
            model.full_clean()
        except ValidationError as exc:
            raise CommandError(f"{proposal.name}: {exc.messages}") from None
        model.save()
