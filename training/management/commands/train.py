"""Plan (and submit) a training run from the command line; `--dry-run --json` creates nothing."""

import json

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from datasets.models import Dataset
from sdscripts.command import build_command, command_text
from sdscripts.params import ParamError, parse_set_options
from training.management.terminal import refusal_text
from training.models import BaseModel, GPUNode, Preset
from training.planning import RUN_KEY_PLACEHOLDER, RunRequest, plan_run


class Command(BaseCommand):
    help = (
        "Validate, plan and submit a LoRA training run for a user (the dataset's owner unless "
        "--owner), with the same checks as the new-run page; --dry-run only shows the plan."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="Dataset id or name.")
        parser.add_argument("--base-model", required=True, help="Base model name.")
        parser.add_argument("--preset", help="Preset name.")
        parser.add_argument(
            "--set", action="append", default=[], metavar="KEY=VALUE",
            help="An sd-scripts option, e.g. network_dim=32 (repeatable).",
        )  # fmt: skip
        parser.add_argument("--owner", help="Username that owns the run.")
        parser.add_argument(
            "--extra-flag", action="append", default=[], metavar="--NAME[=VALUE]",
            help="An sd-scripts option the parameters do not cover, e.g. "
            "--extra-flag=--min_snr_gamma=5 (repeatable; staff-owned runs only; checked "
            "against the script's own options).",
        )  # fmt: skip
        parser.add_argument("--name", default="", help="A name for the run.")
        parser.add_argument("--dry-run", action="store_true", help="Create nothing.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument("--gpu-mib", type=int, help="Plan for a GPU of this size.")
        parser.add_argument("--no-plan", action="store_true", help="Add no memory savers.")
        parser.add_argument(
            "--wait", action="store_true", help="Follow the run; exit non-zero unless it succeeds."
        )
        parser.add_argument(
            "--no-evaluate", action="store_true",
            help="Do not evaluate it in ComfyUI/SwarmUI after training (default: the preset's "
            "setting, on without a preset).",
        )  # fmt: skip

    def handle(self, *args, **opts):
        base_model = BaseModel.objects.filter(name=opts["base_model"]).first()
        if base_model is None:
            raise CommandError(f"base-model: no base model named {opts['base_model']!r}")
        dataset = self._dataset(opts["dataset"])
        if opts["gpu_mib"] and not opts["dry_run"]:
            raise CommandError("gpu-mib: plans for another GPU size; use it with --dry-run")
        try:
            request = RunRequest(
                owner=self._owner(opts["owner"], dataset),
                base_model=base_model,
                dataset=dataset,
                preset=self._preset(opts["preset"], base_model),
                params=parse_set_options(opts["set"]),
                extra_flags=tuple(opts["extra_flag"]),
                name=opts["name"],
                use_planner=not opts["no_plan"],
                budget_mib=opts["gpu_mib"],
            )
            if opts["dry_run"]:
                return self._dry_run(plan_run(request), as_json=opts["json"])
            return self._submit(request, opts)
        except ParamError as exc:
            raise CommandError(refusal_text(exc)) from None
        except (ValidationError, PermissionDenied) as exc:
            # The plan's refusal (disabled model, another's dataset, no GPU fits): its
            # message, not a traceback; nothing was written.
            raise CommandError(refusal_text(exc)) from None

    def _dataset(self, ref: str) -> Dataset:
        qs = Dataset.objects.filter(pk=int(ref)) if ref.isdigit() else Dataset.objects.none()
        found = qs.first() or Dataset.objects.filter(name=ref).order_by("pk").first()
        if found is None:
            raise CommandError(f"dataset: no dataset with id or name {ref!r}")
        return found

    def _owner(self, username: str | None, dataset: Dataset):
        if not username:
            return dataset.owner
        owner = get_user_model().objects.filter(username=username).first()
        if owner is None:
            raise CommandError(f"owner: no user {username!r}")
        return owner

    def _preset(self, name: str | None, base_model: BaseModel) -> Preset | None:
        if not name:
            return None
        preset = Preset.objects.filter(name=name).first()
        if preset is None:
            raise CommandError(f"preset: no preset named {name!r}")
        if preset.architecture != base_model.architecture:
            raise CommandError(
                f"preset: {preset.name} is for {preset.architecture}, "
                f"the base model is {base_model.architecture}"
            )
        return preset

    def _dry_run(self, plan, *, as_json: bool) -> None:
        # The node dispatch would most likely use: the first online one that fits.
        online = {n.name: n for n in GPUNode.objects.online().order_by("name")}
        fitting = [g["node"] for g in plan.gpus if g["fits"]]
        node = online.get(fitting[0]) if fitting else next(iter(online.values()), None)
        try:
            built = build_command(plan.job(node))
        except ValueError as exc:
            raise CommandError(f"base-model: {exc}") from None
        record = plan.record()
        out = {
            "verdict": "refused" if plan.blocking else "ok",
            "blocking": list(plan.blocking),
            "node": node.name if node else None,
            "run_placeholder": RUN_KEY_PLACEHOLDER,
            "script": built.script,
            "argv": built.argv,
            "dataset_config": built.dataset_config,
            "sample_prompts": built.sample_prompts,
            "params": plan.params,
            "vram": {
                **record,
                "savers": [
                    {**stored, "changes": s.changes}
                    for stored, s in zip(record["savers"], plan.vram.savers, strict=True)
                ],
            },
            "gpus": plan.gpus,
        }  # fmt: skip
        if as_json:
            self.stdout.write(json.dumps(out))
            return
        self.stdout.write(command_text(built.argv))
        self.stdout.write(plan.vram.message)
        for reason in plan.blocking:
            self.stdout.write(self.style.WARNING(f"Would be refused: {reason}"))

    def _submit(self, request: RunRequest, opts) -> None:
        from training import services

        run = services.submit_run(
            request.owner,
            dataset=request.dataset,
            base_model=request.base_model,
            preset=request.preset,
            params=request.params,
            extra_flags=request.extra_flags,
            name=request.name,
            use_planner=request.use_planner,
            evaluate_after=False if opts["no_evaluate"] else None,
        )
        if opts["json"]:
            self.stdout.write(json.dumps({"run": run.pk, "status": run.status}))
        else:
            self.stdout.write(self.style.SUCCESS(f"Run {run.pk} is {run.status}."))
        if opts["wait"]:
            from training.follow import follow_run

            run = follow_run(run.pk, write=self.stdout.write)
            if run.status != "succeeded":
                raise CommandError(f"Run {run.pk} ended {run.status}: {run.status_message}")
