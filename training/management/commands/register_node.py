"""Create or update this machine's GPU node, from options and from what is found at home."""

import os
import shlex
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from training.choices import ComfyUnloadMode
from training.models import GPUNode
from training.nodes.setup import NODE_FIELDS, detected_settings

# Node settings about the inference server around training (typed: not plain paths).
INFERENCE_FIELDS = (
    "comfyui_unload",
    "inference_stop_command",
    "inference_start_command",
    "inference_start_timeout",
    "inference_gpu",
)


class Command(BaseCommand):
    help = (
        "Register this machine as a GPU node (its name is its django-q2 cluster name). Options "
        "override what --detect finds; fields not given keep their value."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", default="", help="Node name (default: LORASTUDIO_NODE).")
        parser.add_argument("--sdscripts-dir", help="sd-scripts checkout.")
        parser.add_argument("--sdscripts-python", help="The Python of sd-scripts' venv.")
        parser.add_argument("--comfyui-url", help="ComfyUI URL, e.g. http://127.0.0.1:8188.")
        parser.add_argument("--swarmui-url", help="SwarmUI URL, e.g. http://127.0.0.1:7801.")
        parser.add_argument("--lora-dir", help="Where finished LoRAs are published.")
        parser.add_argument(
            "--inference-lora-dir", "--comfyui-lora-dir", dest="inference_lora_dir",
            help="The LoRA folder ComfyUI/SwarmUI lists, when it differs from --lora-dir "
            "(evaluations copy files into its lorastudio-eval/ folder).",
        )  # fmt: skip
        parser.add_argument(
            "--unload", choices=[c.value for c in ComfyUnloadMode],
            help="Before training: none (leave ComfyUI alone), free (ask it to free memory), "
            "stop (run --stop-command, and --start-command after the run).",
        )  # fmt: skip
        parser.add_argument(
            "--stop-command", metavar="COMMAND",
            help='Stops the inference server, e.g. "systemctl --user stop comfyui" (split into '
            "arguments, never run by a shell).",
        )  # fmt: skip
        parser.add_argument("--start-command", metavar="COMMAND", help="Starts it again.")
        parser.add_argument(
            "--start-timeout", type=int, metavar="SECONDS",
            help="How long to wait for the server to answer after starting it (default 300).",
        )  # fmt: skip
        parser.add_argument(
            "--inference-gpu", type=int, metavar="INDEX",
            help="The GPU ComfyUI/SwarmUI renders on (default 0).",
        )  # fmt: skip
        parser.add_argument("--models-root", help="Base folder of relative model paths.")
        parser.add_argument("--work-dir", help="Where runs are prepared.")
        parser.add_argument(
            "--tokenizer-cache-dir",
            help="Folder of saved tokenizers (sd-scripts --tokenizer_cache_dir), offline nodes.",
        )
        parser.add_argument(
            "--trainer-env", action="append", default=[], metavar="KEY=VALUE",
            help="Extra environment for the trainer, e.g. HF_HUB_OFFLINE=1 (repeatable; "
            "KEY= removes KEY).",
        )  # fmt: skip
        parser.add_argument(
            "--detect", type=Path, metavar="HOME", help="Look for sd-scripts/ComfyUI/SwarmUI here."
        )
        parser.add_argument(
            "--no-probe", action="store_true", help="Do not look for running ComfyUI/SwarmUI."
        )
        parser.add_argument("--dry-run", action="store_true", help="Print only; change nothing.")

    def handle(self, *args, **opts):
        name = opts["name"] or settings.LORASTUDIO_NODE
        # A dry run reads no database: install.sh's dry run has none, only an empty file.
        node = None
        if not opts["dry_run"]:
            node = GPUNode.objects.filter(name=name).first() or GPUNode(name=name)
        values: dict[str, str] = {}
        env_changes: dict[str, str] = {}
        if opts["detect"]:
            home = opts["detect"].expanduser().resolve()
            if not home.is_dir():
                raise CommandError(f"--detect: {home} is not a folder")
            hf_home = os.environ.get("HF_HOME", "")
            values = detected_settings(home, probe=not opts["no_probe"], hf_home=hf_home)
            for label, key in (("ComfyUI", "_comfyui_dirs"), ("SwarmUI", "_swarmui_dirs")):
                self.stdout.write(f"{label}: {values.pop(key) or 'not found'}")
            if "sdscripts_dir" not in values:
                self.stdout.write(
                    self.style.WARNING("sd-scripts: not found (sd3_train_network.py)")
                )
            env_changes = self._hub_cache(
                node, values.pop("_hf_home"), values.pop("_hf_tokenizers")
            )
        values |= {f: opts[f] for f in NODE_FIELDS if opts[f] is not None}
        values |= self._inference_settings(opts)
        env_changes |= self._env_changes(opts["trainer_env"])
        for field in (*NODE_FIELDS, *INFERENCE_FIELDS):
            if field in values:
                self.stdout.write(f"{field}: {values[field]}")
        for key, value in env_changes.items():
            self.stdout.write(f"trainer_env {key}: {value or '(removed)'}")
        if opts["dry_run"]:
            self.stdout.write(f"Would register node {name}")
            return
        created = node.pk is None
        fields = (*NODE_FIELDS, *INFERENCE_FIELDS)
        changed = [f for f in fields if f in values and getattr(node, f) != values[f]]
        for field in changed:
            setattr(node, field, values[field])
        env = {k: v for k, v in {**node.trainer_env, **env_changes}.items() if v != ""}
        if env != node.trainer_env:
            node.trainer_env = env
            changed.append("trainer_env")
        try:
            node.full_clean()
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from None
        if created or changed:
            node.save()
        verb = "Registered" if created else ("Updated" if changed else "Unchanged:")
        self.stdout.write(self.style.SUCCESS(f"{verb} node {node.name}"))

    def _hub_cache(self, node: GPUNode | None, hf_home: str, tokenizers: str) -> dict[str, str]:
        """HF_HOME for a Hugging Face cache found holding sd-scripts' tokenizers, unless the
        node already names one (staff's choice stays; a dry run, node None, does not look).

        Set explicitly even where it is the default: the worker may run as another user or
        under systemd with another home. Never HF_HUB_OFFLINE: a node with internet must still
        fetch the tokenizers of an architecture the cache lacks; check_node says whether the
        node trains offline, and staff add HF_HUB_OFFLINE=1 where it must.
        """
        if not hf_home:
            self.stdout.write("Hugging Face cache: not found (check_node says whether it matters)")
            return {}
        self.stdout.write(f"Hugging Face cache: {hf_home} (tokenizers: {tokenizers})")
        current = (node.trainer_env or {}).get("HF_HOME") if node is not None else None
        if current and current != hf_home:
            self.stdout.write(f"trainer_env HF_HOME: {current} kept (set by staff)")
            return {}
        return {"HF_HOME": hf_home}

    def _inference_settings(self, opts) -> dict:
        """The options about ComfyUI/SwarmUI around training, as node field values."""
        values: dict = {}
        if opts["unload"] is not None:
            values["comfyui_unload"] = opts["unload"]
        for option, field in (
            ("stop_command", "inference_stop_command"),
            ("start_command", "inference_start_command"),
        ):
            if opts[option] is not None:
                try:
                    values[field] = shlex.split(opts[option])
                except ValueError as exc:
                    raise CommandError(f"{option.replace('_', '-')}: {exc}") from None
        for option, field in (
            ("start_timeout", "inference_start_timeout"),
            ("inference_gpu", "inference_gpu"),
        ):
            if opts[option] is not None:
                if opts[option] < 0:
                    raise CommandError(f"{option.replace('_', '-')}: must not be negative")
                values[field] = opts[option]
        return values

    def _env_changes(self, pairs: list[str]) -> dict[str, str]:
        """KEY=VALUE options as a dict ("" removes KEY); bad pairs are a CommandError."""
        changes = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise CommandError(f"trainer-env: write KEY=VALUE, not {pair!r}")
            changes[key] = value
        return changes
