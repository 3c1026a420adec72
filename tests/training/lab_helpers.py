"""Shared by the lab tests (quotas, licences, notifications): a fixed clock, runs that trained
at given times, the new-run form's data, the queue run inline and a webhook receiver."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.training.admin_helpers import submitted
from training.lifecycle import transition
from training.models import TrainingRun

# A Wednesday noon: this week began on Monday 16 November 2026 00:00 (UTC, the tests' zone).
WEDNESDAY_NOON = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
WEEK_START = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)
NEXT_WEEK_TEXT = "Monday 23 November 00:00 (UTC)"


def run_that_trained(owner, started: datetime, finished: datetime | None, **kw) -> TrainingRun:
    """A run submitted through the service that trained from `started` until `finished`
    (still running when None)."""
    run = submitted(owner, **kw)
    for step in ("assigned", "preparing", "running"):
        transition(run, step)
    if finished is not None:
        transition(run, "succeeded")
    TrainingRun.objects.filter(pk=run.pk).update(started_at=started, finished_at=finished)
    run.refresh_from_db()
    return run


def new_run_form(preset, model, dataset, **params) -> dict:
    """The new-run form's POST of a submit."""
    data = {
        "preset": preset.pk,
        "base_model": model.pk,
        "dataset": dataset.pk,
        "name": "my lora",
        "submit": "1",
        "form_token": str(uuid.uuid4()),
    }
    data.update({f"p_{name}": value for name, value in params.items()})
    return data


class WebhookReceiver:
    """A local HTTP server that records each POST and answers with the next of `statuses`
    (then 200)."""

    def __init__(self, statuses: list[int] | None = None):
        self.statuses = list(statuses or [])
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/lora?x=1"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def json(self, index: int = -1) -> dict:
        return json.loads(self.requests[index]["body"])
