"""The single-machine default channel layer: one SQLite file shared by every local process.

Why this layer (see README, "Live updates"): the trainer's worker is not the web server, so
the default layer must deliver across processes without another server. Channels' in-memory
layer cannot; channels-lite's ORM layer polls at 0.1 s (p95 ≈ 114 ms measured) and its aio
layer leaks threads under `async_to_sync` and blocks daphne's SIGTERM. This layer uses only
the standard library's `sqlite3` on its own file (WAL mode), independent of `DATABASE_URL`,
and no threads: each waiting `receive()` checks `PRAGMA data_version` (a counter SQLite bumps
when another connection commits, microseconds to read) every `poll_interval` seconds and
reads rows only when something changed. With REDIS_URL set, settings use channels_redis.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import sqlite3
import string
import threading
import time
from pathlib import Path

from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    body TEXT NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_channel ON messages (channel, id);
CREATE TABLE IF NOT EXISTS groups (
    grp TEXT NOT NULL,
    channel TEXT NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (grp, channel)
);
"""


def _encode(value):
    """JSON cannot carry bytes (websocket binary frames): wrap them."""
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode_hook(obj: dict):
    if len(obj) == 1 and "__bytes__" in obj:
        return base64.b64decode(obj["__bytes__"])
    return obj


class SQLiteChannelLayer(BaseChannelLayer):
    """A channel layer whose messages and groups live in one local SQLite file."""

    extensions = ["groups", "flush"]

    def __init__(
        self,
        path: str | os.PathLike = "channels.sqlite3",
        expiry: int = 60,
        group_expiry: int = 86400,
        capacity: int = 1000,
        channel_capacity=None,
        poll_interval: float = 0.01,
    ):
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        self.path = str(path)
        self.group_expiry = group_expiry
        self.poll_interval = poll_interval
        self._local = threading.local()
        self._writes = 0  # this process's own commits (data_version ignores them)
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._prefix = "".join(random.choices(string.ascii_letters, k=8))

    # --- connection ---------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        """One connection per thread (sqlite3 connections must not cross threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            with self._schema_lock:
                if not self._schema_ready:
                    conn.executescript(_SCHEMA)
                    self._schema_ready = True
            self._local.conn = conn
        return conn

    def _write(self, statements: list[tuple[str, tuple]]) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, args in statements:
                conn.execute(sql, args)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._writes += 1

    def _full(self, conn: sqlite3.Connection, channel: str, now: float) -> bool:
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM messages WHERE channel = ? AND expires > ?", (channel, now)
        ).fetchone()
        return count >= self.get_capacity(channel)

    # --- channel layer API --------------------------------------------------------------
    async def send(self, channel: str, message: dict) -> None:
        """Send a message onto a channel; raises ChannelFull at capacity."""
        assert isinstance(message, dict), "message is not a dict"
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        assert "__asgi_channel__" not in message
        now = time.time()
        conn = self._conn()
        if self._full(conn, channel, now):
            raise ChannelFull(channel)
        self._write(
            [
                (
                    "INSERT INTO messages (channel, body, expires) VALUES (?, ?, ?)",
                    (channel, json.dumps(_encode(message)), now + self.expiry),
                ),
                ("DELETE FROM messages WHERE expires < ?", (now,)),
            ]
        )

    async def receive(self, channel: str) -> dict:
        """Wait for the next message on a channel, oldest first."""
        assert self.require_valid_channel_name(channel)
        conn = self._conn()
        seen = None
        while True:
            version = (conn.execute("PRAGMA data_version").fetchone()[0], self._writes)
            if version != seen:
                seen = version
                message = self._pop(conn, channel)
                if message is not None:
                    return message
            await asyncio.sleep(self.poll_interval)

    def _pop(self, conn: sqlite3.Connection, channel: str) -> dict | None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT id, body FROM messages WHERE channel = ? AND expires >= ? "
                "ORDER BY id LIMIT 1",
                (channel, time.time()),
            ).fetchone()
            if row is not None:
                conn.execute("DELETE FROM messages WHERE id = ?", (row[0],))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if row is None:
            return None
        self._writes += 1
        return json.loads(row[1], object_hook=_decode_hook)

    async def new_channel(self, prefix: str = "specific") -> str:
        """A new, unique channel name for this process."""
        suffix = "".join(random.choices(string.ascii_letters + string.digits, k=12))
        return f"{prefix}.sqlite!{self._prefix}{suffix}"

    async def flush(self) -> None:
        """Delete every message and group membership."""
        self._write([("DELETE FROM messages", ()), ("DELETE FROM groups", ())])

    async def close(self) -> None:
        """Nothing to release beyond per-thread connections (closed with their threads)."""

    # --- groups -------------------------------------------------------------------------
    async def group_add(self, group: str, channel: str) -> None:
        """Add a channel to a group (membership expires after group_expiry)."""
        assert self.require_valid_group_name(group), "Group name not valid"
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        self._write(
            [
                (
                    "INSERT OR REPLACE INTO groups (grp, channel, expires) VALUES (?, ?, ?)",
                    (group, channel, time.time() + self.group_expiry),
                )
            ]
        )

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove a channel from a group."""
        assert self.require_valid_group_name(group), "Group name not valid"
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        self._write([("DELETE FROM groups WHERE grp = ? AND channel = ?", (group, channel))])

    async def group_send(self, group: str, message: dict) -> None:
        """Send a message to every channel of a group; full channels are skipped."""
        assert isinstance(message, dict), "message is not a dict"
        assert self.require_valid_group_name(group), "Group name not valid"
        now = time.time()
        conn = self._conn()
        channels = [
            row[0]
            for row in conn.execute(
                "SELECT channel FROM groups WHERE grp = ? AND expires > ?", (group, now)
            )
        ]
        if not channels:
            return
        body = json.dumps(_encode(message))
        statements = [
            (
                "INSERT INTO messages (channel, body, expires) VALUES (?, ?, ?)",
                (channel, body, now + self.expiry),
            )
            for channel in channels
            if not self._full(conn, channel, now)
        ]
        statements.append(("DELETE FROM messages WHERE expires < ?", (now,)))
        statements.append(("DELETE FROM groups WHERE expires < ?", (now,)))
        self._write(statements)
