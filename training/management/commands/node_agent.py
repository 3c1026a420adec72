"""Keep this machine registered as a GPU node; reap lost runs and dispatch, every few seconds."""

import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from training import reaper, scheduler
from training.nodes import agent
from training.schedules import install_schedules

# How often the agent looks for runs of this node whose worker process died.
VANISHED_CHECK_S = 1.0


class Command(BaseCommand):
    help = (
        "Run the node agent: register/update this node and its GPUs from NVML, reap runs "
        "whose worker is lost and dispatch queued runs. Runs beside `qcluster`."
    )

    def add_arguments(self, parser):
        parser.add_argument("--node", default="", help="Node name (default LORASTUDIO_NODE).")
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="Seconds between beats (default LORASTUDIO_HEARTBEAT_SECONDS).",
        )
        parser.add_argument("--once", action="store_true", help="Do one round, then exit.")

    def handle(self, *args, **opts):
        name = opts["node"] or settings.LORASTUDIO_NODE
        interval = opts["interval"] or settings.LORASTUDIO_HEARTBEAT_SECONDS
        self.stopping = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        node = agent.beat(name)
        install_schedules(name)
        self.stdout.write(f"Node {node.name}: {node.status_message}")
        while True:
            node = agent.beat(name)
            reaped = reaper.reap_vanished(name) + reaper.reap()
            placed = scheduler.dispatch()
            if reaped or placed:
                self.stdout.write(f"reaped {reaped or '-'}; dispatched {placed or '-'}")
            if opts["once"] or self.stopping:
                break
            deadline = time.monotonic() + interval
            next_look = time.monotonic() + VANISHED_CHECK_S
            while not self.stopping and time.monotonic() < deadline:
                time.sleep(0.2)
                if time.monotonic() >= next_look:
                    # A run whose worker died here fails now, not after the stale timeout.
                    next_look = time.monotonic() + VANISHED_CHECK_S
                    if lost := reaper.reap_vanished(name):
                        self.stdout.write(f"lost {lost}; dispatched {scheduler.dispatch() or '-'}")
            if self.stopping:
                break
        self.stdout.write(self.style.SUCCESS(f"Node agent for {name} stopped."))

    def _stop(self, signum, frame):
        self.stopping = True
