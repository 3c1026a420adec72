"""Websockets under hostile use: other pages of the same machine, bad client messages, unknown
paths, and sockets that outlive their login."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.urls import reverse

from tests.factories import make_run
from tests.ws_helpers import client_cookie, communicator, session_cookie
from training.models import RunLog

pytestmark = pytest.mark.django_db(transaction=True)


def _connects(path: str, cookie: str, **kw) -> bool:
    async def go():
        comm = communicator(path, cookie, **kw)
        connected, _ = await comm.connect()
        await comm.disconnect()
        return connected

    return async_to_sync(go)()


# --- Origin: scheme, host and port --------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        b"http://localhost:1",  # same host name, another port: another app of the machine
        b"http://localhost:8188",  # ComfyUI
        b"http://localhost:7801",  # SwarmUI
        b"https://localhost",  # another scheme
        b"http://evil.example",
        b"null",  # a sandboxed frame or a file:// page
        None,  # not a browser
    ],
)
def test_run_socket_from_another_origin_of_the_machine_is_refused(student, origin):
    run = make_run(owner=student)
    assert _connects(f"/ws/runs/{run.pk}/", session_cookie(student), origin=origin) is False


def test_socket_needs_the_exact_port_the_browser_reached(student):
    run = make_run(owner=student)
    cookie = session_cookie(student)
    path = f"/ws/runs/{run.pk}/"
    assert _connects(path, cookie, origin=b"http://localhost:8000", host=b"localhost:8000")
    assert _connects(path, cookie, origin=b"http://LOCALHOST:8000", host=b"localhost:8000")
    assert not _connects(path, cookie, origin=b"http://localhost", host=b"localhost:8000")
    assert not _connects(path, cookie, origin=b"http://localhost:8188", host=b"localhost:8000")


def test_socket_to_a_host_outside_allowed_hosts_is_refused(student):
    run = make_run(owner=student)
    cookie = session_cookie(student)
    assert not _connects(
        f"/ws/runs/{run.pk}/", cookie, origin=b"http://evil.example", host=b"evil.example"
    )


def test_behind_an_https_proxy_only_the_https_origin_is_accepted(settings, student):
    settings.ALLOWED_HOSTS = ["lora.lab.example"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    run = make_run(owner=student)
    cookie = session_cookie(student)
    path = f"/ws/runs/{run.pk}/"
    proxied = {"host": b"lora.lab.example", "headers": ((b"x-forwarded-proto", b"https"),)}
    assert _connects(path, cookie, origin=b"https://lora.lab.example", **proxied)
    assert not _connects(path, cookie, origin=b"http://lora.lab.example", **proxied)
    assert not _connects(path, cookie, origin=b"https://lora.lab.example:8443", **proxied)
    # Without the proxy's header the socket is plain ws: an https page is another origin.
    assert not _connects(path, cookie, origin=b"https://lora.lab.example", host=b"lora.lab.example")


def test_trusted_origins_are_compared_with_scheme_and_port(settings, student):
    # A proxy that rewrites Host: the public origin is listed in CSRF_TRUSTED_ORIGINS.
    settings.CSRF_TRUSTED_ORIGINS = ["https://lora.lab.example", "https://*.gpu.lab.example"]
    run = make_run(owner=student)
    cookie = session_cookie(student)
    path = f"/ws/runs/{run.pk}/"
    inside = {"host": b"127.0.0.1:8000"}
    assert _connects(path, cookie, origin=b"https://lora.lab.example", **inside)
    assert _connects(path, cookie, origin=b"https://lora.lab.example:443", **inside)
    assert _connects(path, cookie, origin=b"https://a.gpu.lab.example", **inside)
    assert not _connects(path, cookie, origin=b"https://lora.lab.example:8188", **inside)
    assert not _connects(path, cookie, origin=b"http://lora.lab.example", **inside)
    assert not _connects(path, cookie, origin=b"https://evil-lora.lab.example", **inside)


def test_lab_socket_checks_the_origin_too(student):
    assert not _connects("/ws/lab/", session_cookie(student), origin=b"http://localhost:8188")


# --- Paths and messages -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/ws/nope/", "/ws/runs/abc/", "/ws/", "/ws/runs/99999999999999999999999/"]
)
def test_unknown_or_impossible_socket_path_is_refused_cleanly(student, path):
    assert _connects(path, session_cookie(student)) is False


BAD_MESSAGES = [
    '{"type": "resume", "after": 1e400}',
    '{"type": "resume", "after": -1e400}',
    '{"type": "resume", "after": NaN}',
    '{"type": "resume", "after": 1.5}',
    '{"type": "resume", "after": true}',
    '{"type": "resume", "after": "1e9"}',
    '{"type": "resume", "after": [1]}',
    '{"type": "resume", "after": {"a": 1}}',
    '{"type": "resume", "after": "' + "9" * 5000 + '"}',
    '{"type": "resume", "after": ' + "9" * 5000 + "}",
    '{"type": ' + "[" * 100000 + "]" * 100000 + "}",
    "[" * 100000 + "]" * 100000,
    '["resume", 1]',
    "42",
    '"resume"',
    "not json",
    " ",
    '{"type": "resume", "after": 0, "pad": "' + "x" * 100_000 + '"}',
]


def test_bad_client_messages_are_ignored_and_the_socket_keeps_working(student):
    run = make_run(owner=student)
    for seq in (1, 2):
        RunLog.objects.create(run=run, seq=seq, text=f"line {seq}\n")
    cookie = session_cookie(student)

    async def go():
        comm = communicator(f"/ws/runs/{run.pk}/?after=2", cookie)
        connected, _ = await comm.connect()
        assert connected
        assert (await comm.receive_json_from(timeout=5))["type"] == "state"
        for text in BAD_MESSAGES:
            await comm.send_to(text_data=text)
        await comm.send_to(bytes_data=b"\x00\xff" * 1000)
        # Still open and still answering: a well-formed resume gets the missing lines.
        await comm.send_json_to({"type": "resume", "after": 0})
        log = await comm.receive_json_from(timeout=5)
        await comm.disconnect()
        return log

    assert async_to_sync(go)() == {"type": "log", "chunks": [[1, "line 1\n"], [2, "line 2\n"]]}


@pytest.mark.parametrize("after", ["1e400", "99999999999999999999", "-5", "x"])
def test_out_of_range_resume_point_in_the_address_is_harmless(student, after):
    run = make_run(owner=student)
    RunLog.objects.create(run=run, seq=1, text="line 1\n")
    cookie = session_cookie(student)

    async def go():
        comm = communicator(f"/ws/runs/{run.pk}/?after={after}", cookie)
        connected, _ = await comm.connect()
        state = await comm.receive_json_from(timeout=5)
        await comm.send_json_to({"type": "resume", "after": 0})
        log = await comm.receive_json_from(timeout=5)
        await comm.disconnect()
        return connected, state["type"], log

    connected, first, log = async_to_sync(go)()
    assert connected and first == "state"
    assert log["chunks"] == [[1, "line 1\n"]]


def test_lab_socket_ignores_whatever_the_client_sends(student):
    cookie = session_cookie(student)

    async def go():
        comm = communicator("/ws/lab/", cookie)
        await comm.connect()
        assert (await comm.receive_json_from(timeout=5))["type"] == "board"
        await comm.send_to(text_data='{"type": "resume", "after": 1e400}')
        await comm.send_to(bytes_data=b"\x00")
        await get_channel_layer().group_send("lab", {"type": "lab.changed", "run": 0})
        board = await comm.receive_json_from(timeout=5)
        await comm.disconnect()
        return board

    assert async_to_sync(go)()["type"] == "board"


# --- The login behind an open socket ------------------------------------------------------


def _end_session(how: str, client, user) -> None:
    if how == "logout":
        client.post(reverse("logout"))
    else:  # staff reset the password: every session of the account ends
        user.set_password("a-new-password-9")
        user.save()


@pytest.mark.parametrize("how", ["logout", "password_changed"])
def test_lab_socket_closes_on_its_next_push_once_the_session_ended(client, student, how):
    client.force_login(student)
    cookie = client_cookie(client)

    async def go():
        comm = communicator("/ws/lab/", cookie)
        connected, _ = await comm.connect()
        assert connected
        assert (await comm.receive_json_from(timeout=5))["type"] == "board"
        await sync_to_async(_end_session)(how, client, student)
        await get_channel_layer().group_send("lab", {"type": "lab.changed", "run": 0})
        closed = await comm.receive_output(timeout=5)  # no board first
        await comm.disconnect()
        return closed

    closed = async_to_sync(go)()
    assert closed["type"] == "websocket.close" and closed["code"] == 4401
    # And the page cannot open a new one with the ended session.
    assert _connects("/ws/lab/", cookie) is False


def test_run_socket_sends_no_more_log_after_logout(client, student):
    run = make_run(owner=student)
    client.force_login(student)
    cookie = client_cookie(client)

    async def go():
        comm = communicator(f"/ws/runs/{run.pk}/", cookie)
        await comm.connect()
        assert (await comm.receive_json_from(timeout=5))["type"] == "state"
        await sync_to_async(client.post)(reverse("logout"))
        group = f"run-{run.pk}"
        await get_channel_layer().group_send(group, {"type": "run.log", "seq": 1, "text": "x\n"})
        closed = await comm.receive_output(timeout=5)
        await comm.disconnect()
        return closed

    closed = async_to_sync(go)()
    assert closed["type"] == "websocket.close" and closed["code"] == 4401


def test_idle_run_socket_is_closed_by_the_periodic_session_check(settings, client, student):
    settings.LORASTUDIO_WS_SESSION_CHECK_SECONDS = 0.05
    run = make_run(owner=student)
    client.force_login(student)
    cookie = client_cookie(client)

    async def go():
        comm = communicator(f"/ws/runs/{run.pk}/", cookie)
        await comm.connect()
        assert (await comm.receive_json_from(timeout=5))["type"] == "state"
        await sync_to_async(client.post)(reverse("logout"))
        closed = await comm.receive_output(timeout=10)  # nothing was pushed meanwhile
        await comm.disconnect()
        return closed

    closed = async_to_sync(go)()
    assert closed["type"] == "websocket.close" and closed["code"] == 4401


def test_socket_stays_open_while_the_session_lasts(settings, client, student):
    settings.LORASTUDIO_WS_SESSION_CHECK_SECONDS = 0.05
    run = make_run(owner=student)
    client.force_login(student)
    cookie = client_cookie(client)

    async def go():
        comm = communicator(f"/ws/runs/{run.pk}/", cookie)
        await comm.connect()
        assert (await comm.receive_json_from(timeout=5))["type"] == "state"
        # The periodic check runs meanwhile and finds the session alive.
        await sync_to_async(RunLog.objects.create)(run=run, seq=1, text="still here\n")
        group = f"run-{run.pk}"
        await get_channel_layer().group_send(
            group, {"type": "run.log", "seq": 1, "text": "still here\n"}
        )
        log = await comm.receive_json_from(timeout=5)
        await comm.disconnect()
        return log

    assert async_to_sync(go)() == {"type": "log", "chunks": [[1, "still here\n"]]}
