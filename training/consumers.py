"""Websocket consumers: a run's live page and the dashboard's lab board."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.template.loader import render_to_string

from lorastudio.websocket import SessionGuard, client_message, seq_number
from training.live import (
    LAB_GROUP,
    eval_image_message,
    evaluation_state,
    run_group,
    run_state,
    sample_message,
)
from training.models import Evaluation, EvaluationImage, RunLog, SampleImage, TrainingRun

# Chunks sent on connect without a resume point, and per batch when catching up.
LOG_TAIL_CHUNKS = 200
CATCH_UP_BATCH = 500
BOARD_REFRESH_SECONDS = 5.0


def _after_from_query(scope) -> int | None:
    """The `?after=N` resume point a reconnecting page passes, if any."""
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("after")
    return seq_number(values[0]) if values else None


class RunConsumer(SessionGuard, AsyncJsonWebsocketConsumer):
    """`ws/runs/<id>/`: the run's state, its log (each line once, in order) and progress.

    Only the owner or staff may connect, and only while their login lasts (SessionGuard).
    Every log message carries its RunLog seq; the consumer remembers the last seq it sent,
    drops repeats and fills gaps from the database, so a client never sees a line twice nor
    misses one.
    """

    async def connect(self):
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        self.last_seq = 0
        user = self.scope.get("user")
        if user is None or not await self._visible(user):
            await self.close()
            return
        self.group = run_group(self.run_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self.start_session_guard()
        await self.send_json({"type": "state", "state": await self._state()})
        # Samples stored before this socket joined the group (the page skips ones it shows).
        for sample in await self._samples():
            await self._send_sample(sample)
        # Evaluations still rendering: their state and pictures so far (the page skips the
        # cells it shows).
        for message in await self._evaluations():
            await self._send_typed(message)
        after = _after_from_query(self.scope)
        if after is None:
            await self._send_tail()
        else:
            await self._catch_up(after)

    async def disconnect(self, code):
        self.stop_session_guard()
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        # The one message a client may send: {"type": "resume", "after": N}. Anything else
        # (binary, not JSON, another type, a bad N) is ignored, never an error.
        content = client_message(text_data)
        if content is None or content.get("type") != "resume":
            return
        after = seq_number(content.get("after", 0))
        if after is None or not await self.session_alive():
            return
        self.last_seq = min(self.last_seq, after)
        await self._catch_up(after)

    # --- group messages (each re-checks the login first) ------------------------------------
    async def run_log(self, event):
        if not await self.session_alive():
            return
        seq = int(event["seq"])
        if seq <= self.last_seq:
            return
        if seq > self.last_seq + 1:
            await self._catch_up(self.last_seq)  # fills the gap, this chunk included
            return
        self.last_seq = seq
        await self.send_json({"type": "log", "chunks": [[seq, event["text"]]]})

    async def run_progress(self, event):
        if not await self.session_alive():
            return
        await self.send_json({"type": "progress", "state": event["state"]})

    async def run_state(self, event):
        if not await self.session_alive():
            return
        await self.send_json(
            {
                "type": "state",
                "state": event["state"],
                "reload": bool(event["state"].get("is_terminal")),
            }
        )

    async def run_sample(self, event):
        if not await self.session_alive():
            return
        await self._send_sample(event)

    async def run_evaluation(self, event):
        if not await self.session_alive():
            return
        await self._send_typed(event)

    async def run_eval_image(self, event):
        if not await self.session_alive():
            return
        await self._send_typed(event)

    # --- helpers ------------------------------------------------------------------------
    async def _send_typed(self, event):
        """A `run.x` group message as the page's `x` message."""
        await self.send_json({**event, "type": event["type"].removeprefix("run.")})

    async def _send_sample(self, event):
        await self.send_json({"type": "sample", **{k: v for k, v in event.items() if k != "type"}})

    async def _send_tail(self):
        chunks = await self._chunks(None, LOG_TAIL_CHUNKS)
        first = chunks[0][0] if chunks else 1
        await self._send_chunks(chunks, truncated=first > 1)

    async def _catch_up(self, after: int):
        while True:
            chunks = await self._chunks(after, CATCH_UP_BATCH)
            chunks = [c for c in chunks if c[0] > self.last_seq]
            if not chunks:
                return
            await self._send_chunks(chunks)
            after = chunks[-1][0]

    async def _send_chunks(self, chunks, truncated: bool = False):
        if not chunks:
            return
        self.last_seq = max(self.last_seq, chunks[-1][0])
        message = {"type": "log", "chunks": chunks}
        if truncated:
            message["truncated"] = True
        await self.send_json(message)

    @database_sync_to_async
    def _visible(self, user) -> bool:
        return TrainingRun.objects.visible_to(user).filter(pk=self.run_id).exists()

    @database_sync_to_async
    def _state(self) -> dict:
        run = TrainingRun.objects.select_related("node", "gpu").get(pk=self.run_id)
        return run_state(run)

    @database_sync_to_async
    def _samples(self) -> list[dict]:
        rows = SampleImage.objects.filter(run_id=self.run_id).order_by("pk")
        return [sample_message(sample) for sample in rows]

    @database_sync_to_async
    def _evaluations(self) -> list[dict]:
        messages = []
        for evaluation in Evaluation.objects.active().filter(run_id=self.run_id):
            messages.append(evaluation_state(evaluation))
            images = EvaluationImage.objects.filter(evaluation=evaluation).order_by("pk")
            messages.extend(eval_image_message(image) for image in images)
        return messages

    @database_sync_to_async
    def _chunks(self, after: int | None, limit: int) -> list[list]:
        rows = RunLog.objects.filter(run_id=self.run_id)
        if after is None:
            rows = rows.order_by("-seq")[:limit]
            return [[seq, text] for seq, text in reversed(rows.values_list("seq", "text"))]
        rows = rows.filter(seq__gt=after).order_by("seq")[:limit]
        return [[seq, text] for seq, text in rows.values_list("seq", "text")]


class LabConsumer(SessionGuard, AsyncJsonWebsocketConsumer):
    """`ws/lab/`: the dashboard's lab board and the user's own runs, re-rendered on change,
    while the user's login lasts (SessionGuard)."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()
            return
        self.user = user
        await self.channel_layer.group_add(LAB_GROUP, self.channel_name)
        await self.accept()
        self.start_session_guard()
        await self._send_board()
        # GPU memory and temperature change without a run event: refresh now and then.
        self._ticker = asyncio.ensure_future(self._tick())

    async def disconnect(self, code):
        self.stop_session_guard()
        ticker = getattr(self, "_ticker", None)
        if ticker is not None:
            ticker.cancel()
        if getattr(self, "user", None) is not None:
            await self.channel_layer.group_discard(LAB_GROUP, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """Clients have nothing to say on this socket: whatever they send is ignored."""

    async def lab_changed(self, event):
        await self._send_board()

    async def _tick(self):
        while True:
            await asyncio.sleep(BOARD_REFRESH_SECONDS)
            if not await self._send_board():
                return

    async def _send_board(self) -> bool:
        """Push the board if the login still holds; False once the socket is closing."""
        if not await self.session_alive():
            return False
        board, runs = await self._render()
        await self.send_json({"type": "board", "board": board, "runs": runs})
        return True

    @database_sync_to_async
    def _render(self) -> tuple[str, str]:
        from training.views import dashboard_context

        context = dashboard_context(self.user)
        board = render_to_string("training/includes/lab_board.html", context)
        runs = render_to_string("training/includes/my_runs.html", context)
        return board, runs
