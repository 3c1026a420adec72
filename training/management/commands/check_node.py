"""Check this node and print a report with a fix for every problem."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from training.models import GPUNode
from training.nodes.check import FAIL, OK, WARN, check_node


class Command(BaseCommand):
    help = (
        "Validate this GPU node: sd-scripts and its Python, NVML, ComfyUI/SwarmUI, model files, "
        "LoRA and work folders, disk space. Exits with an error when a check fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", default="", help="Node name (default: LORASTUDIO_NODE).")
        parser.add_argument(
            "--min-free-gb", type=float, default=20.0, help="Warn below this much free disk."
        )

    def handle(self, *args, **opts):
        name = opts["name"] or settings.LORASTUDIO_NODE
        node = GPUNode.objects.filter(name=name).first()
        if node is None:
            raise CommandError(f"No node named {name}: run `manage.py register_node` first")
        checks = check_node(node, min_free_gib=opts["min_free_gb"])
        style = {OK: self.style.SUCCESS, WARN: self.style.WARNING, FAIL: self.style.ERROR}
        self.stdout.write(f"Node {node.name}")
        for c in checks:
            self.stdout.write(style[c.state](f"[{c.state:4}] {c.name}: {c.detail}"))
            if c.fix and c.state != OK:
                self.stdout.write(f"       fix: {c.fix}")
        failed = [c.name for c in checks if c.state == FAIL]
        warned = sum(c.state == WARN for c in checks)
        if failed:
            raise CommandError(f"{len(failed)} check(s) failed: {', '.join(failed)}")
        self.stdout.write(self.style.SUCCESS(f"Node {node.name} is ready ({warned} warning(s))"))
