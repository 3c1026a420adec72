"""Check this node and print a report with a fix for every problem."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from training.models import GPUNode
from training.nodes.check import FAIL, OK, WARN, check_node
from training.nodes.probe import PROBE_TIMEOUT_S


class Command(BaseCommand):
    help = (
        "Validate this GPU node: sd-scripts and its Python, the optional optimizer modules, "
        "the tokenizers offline, NVML, ComfyUI/SwarmUI, model files, LoRA and work folders, "
        "disk space; --probe also trains one real step. Exits with an error when a check fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", default="", help="Node name (default: LORASTUDIO_NODE).")
        parser.add_argument(
            "--min-free-gb", type=float, default=20.0, help="Warn below this much free disk."
        )
        parser.add_argument(
            "--probe",
            action="store_true",
            help="Also train one step of the smallest base model (64 px, no samples) on GPU 0, "
            "or the CPU without one; run it while the node is idle.",
        )
        parser.add_argument(
            "--probe-timeout",
            type=float,
            default=PROBE_TIMEOUT_S,
            metavar="SECONDS",
            help=f"Give the probe this long (default {PROBE_TIMEOUT_S}).",
        )

    def handle(self, *args, **opts):
        name = opts["name"] or settings.LORASTUDIO_NODE
        node = GPUNode.objects.filter(name=name).first()
        if node is None:
            raise CommandError(f"No node named {name}: run `manage.py register_node` first")
        if opts["probe_timeout"] <= 0:
            raise CommandError("--probe-timeout must be more than 0 seconds")
        checks = check_node(
            node,
            min_free_gib=opts["min_free_gb"],
            run_probe=opts["probe"],
            probe_timeout_s=opts["probe_timeout"],
        )
        style = {OK: self.style.SUCCESS, WARN: self.style.WARNING, FAIL: self.style.ERROR}
        self.stdout.write(f"Node {node.name}")
        for c in checks:
            self.stdout.write(style[c.state](f"[{c.state:4}] {c.name}: {c.detail}"))
            if c.fix and c.state != OK:
                self.stdout.write(f"       fix: {c.fix}")
            if c.log and c.state != OK:
                self.stdout.write("       last lines of its log:")
                for line in c.log.splitlines():
                    self.stdout.write(f"       | {line}")
        failed = [c.name for c in checks if c.state == FAIL]
        warned = sum(c.state == WARN for c in checks)
        if failed:
            raise CommandError(f"{len(failed)} check(s) failed: {', '.join(failed)}")
        self.stdout.write(self.style.SUCCESS(f"Node {node.name} is ready ({warned} warning(s))"))
