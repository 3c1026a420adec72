"""The trainer process: start it in its own process group, read its output, stop the group.

The trainer (sd-scripts or the demo) runs in a session of its own, so one signal to its
process group reaches every child it starts (data loaders, sample generation). It gets
SIGKILL as its parent-death signal, so it cannot outlive a killed worker, and the reaper
can still kill a group whose runner is gone (`kill_group`). Both pipes are read by threads
that never let them fill. It inherits an allow-list of the worker's environment, never the
app's secrets (`trainer_environment`). No Django here.
"""

from __future__ import annotations

import codecs
import ctypes
import functools
import logging
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence

from sdscripts.progress import Piece, StreamSplitter

logger = logging.getLogger(__name__)

# --- The trainer's environment ----------------------------------------------------------------
# A trainer runs code a student influences (captions, prompts, sd-scripts and its many
# dependencies), while the worker that starts it holds SECRET_KEY (tasks and sessions are signed
# with it), DATABASE_URL and REDIS_URL. So the trainer inherits an allow-list, not the worker's
# environment: what finding programs, CUDA, Python's output, model caches and downloads need.
TRAINER_ENV_NAMES = frozenset(
    {
        # Programs, the account and its home (Hugging Face and torch caches live under HOME).
        "PATH", "HOME", "USER", "LOGNAME",
        # Language, time zone, temporary files.
        "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP",
        # Shared libraries: CUDA installed outside the system's library path.
        "LD_LIBRARY_PATH",
        # The trainer's Python: output and encoding only. PYTHONPATH and PYTHONHOME belong to
        # the worker's interpreter and would mislead sd-scripts' own venv.
        "PYTHONUNBUFFERED", "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONDONTWRITEBYTECODE",
        # Threads of the CPU maths libraries.
        "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
        # Downloads (tokenizers, encoders) through a campus proxy, with its certificates.
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
        "XDG_CACHE_HOME",
    }
)  # fmt: skip
TRAINER_ENV_PREFIXES = (
    "LC_",  # locale
    "CUDA_", "NVIDIA_", "NCCL_",  # the GPU (the runner sets CUDA_VISIBLE_DEVICES itself)
    "HF_", "HUGGINGFACE_", "TRANSFORMERS_", "DIFFUSERS_",  # model caches, offline mode, token
    "TORCH_", "PYTORCH_", "XFORMERS_", "ACCELERATE_",  # torch caches and allocator, accelerate
    "DEMO_TRAINER_",  # the built-in demo trainer's own knobs
)  # fmt: skip
# Never passed on, whatever an operator adds (LORASTUDIO_TRAINER_ENV): the app's own secrets
# and settings.
NEVER_TO_TRAINER = frozenset({"SECRET_KEY", "DATABASE_URL", "REDIS_URL"})
NEVER_TO_TRAINER_PREFIXES = ("DJANGO_", "LORASTUDIO_")


def _matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether `name` is one of `patterns` ("NAME", or "PREFIX*" for a prefix)."""
    return any(name.startswith(p[:-1]) if p.endswith("*") else name == p for p in patterns)


def trainer_environment(
    parent: Mapping[str, str], own: Mapping[str, str], inherit: Iterable[str] = ()
) -> dict[str, str]:
    """The environment a trainer starts with: the allowed part of `parent` (the worker's
    environment), plus the names or "PREFIX*" patterns of `inherit` (an operator's additions),
    never the app's secrets; then the command's `own` variables on top."""
    extra = tuple(inherit)
    env = {
        name: value
        for name, value in parent.items()
        if (
            name in TRAINER_ENV_NAMES
            or name.startswith(TRAINER_ENV_PREFIXES)
            or _matches(name, extra)
        )
        and name not in NEVER_TO_TRAINER
        and not name.startswith(NEVER_TO_TRAINER_PREFIXES)
    }
    env.update(own)
    return env


PR_SET_PDEATHSIG = 1
READ_BYTES = 65536
# After the trainer exits, children holding our pipes open get this long before we kill them,
# and then this long in all before we stop reading.
ORPHAN_GRACE_S = 2.0
ORPHAN_GIVE_UP_S = 5.0


def group_pids(pgid: int) -> frozenset[int]:
    """The live (not zombie) processes of process group `pgid`, from Linux /proc."""
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        # Fields after the ")" that ends the command name: state ppid pgrp ...
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            pids.add(int(entry))
    return frozenset(pids)


def process_alive(pid: int | None) -> bool:
    """Whether process `pid` exists and is not a zombie (a killed worker whose parent has not
    reaped it yet is gone for us), from Linux /proc."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[-1].split()
    return bool(fields) and fields[0] not in ("Z", "X")


def kill_group(pgid: int | None) -> bool:
    """SIGKILL process group `pgid` if any process of it is alive; True when one was."""
    if not pgid or not group_pids(pgid):
        return False
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    except PermissionError:
        logger.warning("Not allowed to kill process group %s", pgid)
        return False
    return True


def stop_group(pgid: int | None, proc: subprocess.Popen | None = None, grace: float = 1.0):
    """SIGTERM a process group, wait up to `grace` seconds, then SIGKILL what is left."""
    if not pgid:
        return
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc is not None:
            proc.poll()
        if not group_pids(pgid):
            break
        time.sleep(0.05)
    else:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc is not None:
        try:
            proc.wait(timeout=5)  # reap it: its exit status is how the run is classified
        except subprocess.TimeoutExpired:
            pass


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the worker that started us dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


@functools.cache
def setpriv() -> str | None:
    """util-linux's setpriv, when installed."""
    return shutil.which("setpriv")


def with_parent_death_signal(argv: Sequence[str]) -> tuple[list[str], object]:
    """(argv, preexec_fn) that start a program with SIGKILL as its parent-death signal.

    `setpriv --pdeathsig KILL` sets it and execs the program in the same process. A Python
    preexec_fn does the same but makes subprocess fork this large worker instead of
    vfork-ing it, about 5 ms more on every start; it stays as the fallback.
    """
    tool = setpriv()
    if tool:
        return [tool, "--pdeathsig", "KILL", "--", *argv], None
    return list(argv), _die_with_parent


def read_pipe(stream, name: str, out: queue.Queue) -> None:
    """Move raw output into `out` as decoded text until EOF, then put (name, None)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    fd = stream.fileno()
    while True:
        try:
            data = os.read(fd, READ_BYTES)
        except OSError:
            data = b""
        if not data:
            out.put((name, decoder.decode(b"", final=True)))
            out.put((name, None))
            return
        out.put((name, decoder.decode(data)))


class TrainerProcess:
    """One running trainer: its process, process group and output.

    Its environment is `trainer_environment(os.environ, command_env, inherit)`: the command's
    own variables and the allowed part of this worker's environment, never all of it.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: str,
        command_env: Mapping[str, str],
        inherit: Iterable[str] = (),
    ):
        argv, preexec_fn = with_parent_death_signal(argv)
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=trainer_environment(os.environ, command_env, inherit),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
        self.pgid = self.proc.pid
        self._out: queue.Queue = queue.Queue()
        self._open = {"stdout", "stderr"}
        self._splitters = {name: StreamSplitter() for name in self._open}
        for stream, name in ((self.proc.stdout, "stdout"), (self.proc.stderr, "stderr")):
            threading.Thread(target=read_pipe, args=(stream, name, self._out), daemon=True).start()
        self._exited_at: float | None = None

    @property
    def pids(self) -> frozenset[int]:
        """The live processes of the trainer's group."""
        return group_pids(self.pgid)

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def output(self, timeout: float) -> Iterator[tuple[str, str | None]]:
        """(stream, text) chunks that arrive within `timeout`; text None ends a stream."""
        try:
            yield self._out.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            try:
                yield self._out.get_nowait()
            except queue.Empty:
                return

    def done(self, name: str) -> None:
        """Note that stream `name` reached its end."""
        self._open.discard(name)

    def pieces(self, timeout: float) -> Iterator[tuple[str, Piece]]:
        """(stream, piece) for the output that arrives within `timeout`, each stream cut into
        lines and progress redraws by its own splitter (flushed, and the stream marked done,
        at its end). The runner and the node probe read trainers so."""
        for name, text in self.output(timeout):
            if text is None:
                self.done(name)
                pieces = self._splitters[name].flush()
            else:
                pieces = self._splitters[name].feed(text)
            for piece in pieces:
                yield name, piece

    def finished(self) -> bool:
        """Whether to stop reading: both streams ended, or the trainer exited and its
        leftover children kept the pipes open too long (they are killed first)."""
        if not self._open:
            return True
        if self.proc.poll() is None:
            return False
        now = time.monotonic()
        self._exited_at = self._exited_at or now
        if now - self._exited_at > ORPHAN_GRACE_S:
            stop_group(self.pgid, None, grace=0.5)
        return now - self._exited_at > ORPHAN_GIVE_UP_S

    def stop(self, grace: float = 1.0) -> None:
        """SIGTERM the group, then SIGKILL what is left after `grace` seconds."""
        stop_group(self.pgid, self.proc, grace=grace)

    def wait(self) -> int:
        return self.proc.wait()
