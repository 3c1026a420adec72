"""Plan (and submit) a training run from the command line; `--dry-run --json` creates nothing."""

import json

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from datasets.models import Dataset
from training.kohya import ModelFiles, Subset, TrainJob, build_command
from training.models import BaseModel, GPUNode, Preset
from training.params import ParamError, parse_set_options, validate_params
from training.selectors import candidate_gpus, largest_gpu_mib
from training.vram import plan


def _errors(exc: ParamError) -> str:
    return "; ".join(f"{field}: {message}" for field, message in exc.errors.items())


def _refusal(exc: ValidationError | PermissionDenied) -> str:
    return " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)


class Command(BaseCommand):
    help = "Validate, plan and submit a LoRA training run (or only show it with --dry-run)."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="Dataset id or name.")
        parser.add_argument("--base-model", required=True, help="Base model name.")
        parser.add_argument("--preset", help="Preset name.")
        parser.add_argument(
            "--set", action="append", default=[], metavar="KEY=VALUE",
            help="An sd-scripts option, e.g. network_dim=32 (repeatable).",
        )  # fmt: skip
        parser.add_argument("--owner", help="Username that owns the run.")
        parser.add_argument("--dry-run", action="store_true", help="Create nothing.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument("--gpu-mib", type=int, help="Plan for a GPU of this size.")
        parser.add_argument("--no-plan", action="store_true", help="Add no memory savers.")
        parser.add_argument(
            "--wait", action="store_true", help="Follow the run; exit non-zero unless it succeeds."
        )

    def handle(self, *args, **opts):
        base_model = BaseModel.objects.filter(name=opts["base_model"]).first()
        if base_model is None:
            raise CommandError(f"base-model: no base model named {opts['base_model']!r}")
        dataset = self._dataset(opts["dataset"])
        preset = None
        if opts["preset"]:
            preset = Preset.objects.filter(name=opts["preset"]).first()
            if preset is None:
                raise CommandError(f"preset: no preset named {opts['preset']!r}")
            if preset.architecture != base_model.architecture:
                raise CommandError(
                    f"preset: {preset.name} is for {preset.architecture}, "
                    f"the base model is {base_model.architecture}"
                )
        arch = base_model.architecture
        try:
            overrides = parse_set_options(opts["set"])
            params = validate_params(arch, overrides, base=preset.values if preset else None)
        except ParamError as exc:
            raise CommandError(_errors(exc)) from None
        if opts["dry_run"]:
            return self._dry_run(opts, arch, base_model, dataset, params)
        return self._submit(opts, dataset, base_model, preset, overrides)

    def _dataset(self, ref: str) -> Dataset:
        qs = Dataset.objects.filter(pk=int(ref)) if ref.isdigit() else Dataset.objects.none()
        found = qs.first() or Dataset.objects.filter(name=ref).order_by("pk").first()
        if found is None:
            raise CommandError(f"dataset: no dataset with id or name {ref!r}")
        return found

    def _dry_run(self, opts, arch, base_model, dataset, params):
        budget = opts["gpu_mib"] or largest_gpu_mib()
        result = plan(arch, params, budget, allow_savers=not opts["no_plan"])
        node = GPUNode.objects.online().order_by("name").first()
        work = (node.work_dir if node and node.work_dir else "work").rstrip("/") + "/run-dry"
        files = base_model.model_files(node.models_root if node else "")
        job = TrainJob(
            architecture=arch,
            model=ModelFiles(**{"checkpoint": "", **files}),
            subsets=(
                Subset(
                    image_dir=f"{work}/images/{dataset.repeats}_{dataset.trigger_word}",
                    num_repeats=dataset.repeats,
                    class_tokens=dataset.trigger_word,
                    caption_extension=dataset.caption_extension,
                ),
            ),
            params=result.params,
            work_dir=work,
            output_dir=f"{work}/output",
            output_name="run-dry",
            logging_dir=f"{work}/logs",
            python=(node.sdscripts_python if node and node.sdscripts_python else "python"),
            sdscripts_dir=(node.sdscripts_dir if node and node.sdscripts_dir else "sd-scripts"),
        )
        try:
            built = build_command(job)
        except ValueError as exc:
            raise CommandError(f"base-model: {exc}") from None
        out = {
            "script": built.script,
            "argv": built.argv,
            "dataset_config": built.dataset_config,
            "sample_prompts": built.sample_prompts,
            "params": result.params,
            "vram": {
                "estimate_mib": result.estimate_mib,
                "budget_mib": result.budget_mib,
                "fits": result.fits,
                "savers": [
                    {"name": s.name, "changes": s.changes, "reason": s.reason,
                     "saved_mib": s.saved_mib}
                    for s in result.savers
                ],
                "message": result.message,
            },
            "gpus": candidate_gpus(arch, params),
        }  # fmt: skip
        if opts["json"]:
            self.stdout.write(json.dumps(out))
            return
        self.stdout.write(" ".join(built.argv))
        self.stdout.write(result.message)

    def _submit(self, opts, dataset, base_model, preset, overrides):
        from training import services  # the lead's service; validates and plans again

        owner = dataset.owner
        if opts["owner"]:
            owner = get_user_model().objects.filter(username=opts["owner"]).first()
            if owner is None:
                raise CommandError(f"owner: no user {opts['owner']!r}")
        try:
            run = services.submit_run(
                owner,
                dataset=dataset,
                base_model=base_model,
                preset=preset,
                params=overrides,
                use_planner=not opts["no_plan"],
            )
        except ParamError as exc:
            raise CommandError(_errors(exc)) from None
        except (ValidationError, PermissionDenied) as exc:
            # The service's refusal (disabled model, dataset not the owner's, no GPU fits):
            # its message, not a traceback; the service wrote nothing.
            raise CommandError(_refusal(exc)) from None
        if opts["json"]:
            self.stdout.write(json.dumps({"run": run.pk, "status": run.status}))
        else:
            self.stdout.write(self.style.SUCCESS(f"Run {run.pk} is {run.status}."))
        if opts["wait"]:
            from training.follow import follow_run

            run = follow_run(run.pk, write=self.stdout.write)
            if run.status != "succeeded":
                raise CommandError(f"Run {run.pk} ended {run.status}: {run.status_message}")
