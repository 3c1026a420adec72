"""Free runs whose worker stopped reporting, then dispatch."""

from django.core.management.base import BaseCommand

from training import reaper, scheduler


class Command(BaseCommand):
    help = "Mark runs whose worker heartbeat is stale as worker_lost (kill their trainers here)."

    def handle(self, *args, **opts):
        reaped = reaper.reap()
        placed = scheduler.dispatch()
        self.stdout.write(f"Reaped {len(reaped)} run(s) {reaped}; dispatched {placed}.")
