"""Show nodes and their GPUs with memory bars."""

from django.core.management.base import BaseCommand

from training.models import GPUNode, TrainingRun

BAR = 24


def memory_bar(used: int, total: int) -> str:
    """A bar of used memory, e.g. "[########----------------]"."""
    if total <= 0:
        return "[" + " " * BAR + "]"
    done = min(BAR, round(BAR * used / total))
    return "[" + "#" * done + "-" * (BAR - done) + "]"


class Command(BaseCommand):
    help = "List GPU nodes (online or not) and their GPUs: memory, use and the run on each."

    def handle(self, *args, **opts):
        nodes = list(GPUNode.objects.prefetch_related("gpus"))
        runs = {
            r.gpu_id: r for r in TrainingRun.objects.on_gpu().exclude(gpu=None).select_related()
        }
        if not nodes:
            self.stdout.write("No GPU nodes yet: start `manage.py node_agent` on a machine.")
        for node in nodes:
            state = "online" if node.is_online else ("disabled" if not node.enabled else "offline")
            style = self.style.SUCCESS if node.is_online else self.style.WARNING
            self.stdout.write(style(f"{node.name} ({state}) {node.status_message}"))
            for gpu in node.gpus.all():
                used = gpu.total_mib - gpu.free_mib
                run = runs.get(gpu.pk)
                self.stdout.write(
                    f"  GPU {gpu.index} {gpu.name[:24]:<24} {memory_bar(used, gpu.total_mib)} "
                    f"{used / 1024:5.1f}/{gpu.total_mib / 1024:.1f} GB"
                    + (
                        f"  reclaimable {gpu.reclaimable_mib / 1024:.1f} GB"
                        if gpu.reclaimable_mib
                        else ""
                    )
                    + (f"  run #{run.pk}" if run else "")
                    + ("" if gpu.enabled else "  (disabled)")
                )
