"""The runner: the django-q2 task body that trains one run and always ends it.

Shaped like netbox's JobRunner (STYLE.md §3): re-check the status on entry, prepare, run the
trainer, classify its exit, collect its files, and in `finally` stop its process group and
call dispatch again.
"""

from __future__ import annotations

import codecs
import ctypes
import functools
import hashlib
import json
import logging
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from training import comfyui, nvml
from training.choices import Architecture, ArtifactKind, FailureReason, RunStatus
from training.lifecycle import TransitionError, notify, run_state, transition
from training.models import GPU, LoraArtifact, RunLog, TrainingRun
from training.outcome import classify_exit
from training.progress import (
    StreamSplitter,
    is_progress_noise,
    parse_epoch,
    parse_progress,
    parse_saved_path,
    parse_total_steps,
)
from training.samples import SampleCollector

logger = logging.getLogger(__name__)

LOG_FLUSH_S = 0.5
PROGRESS_FLUSH_S = 0.5
HEARTBEAT_S = 1.0
VRAM_POLL_S = 2.0
TERM_GRACE_S = 3.0
FREE_WAIT_S = 60.0
MAX_LOSS_POINTS = 500
MAX_LOG_BYTES = 20 * 1024 * 1024
TAIL_LINES = 300
PR_SET_PDEATHSIG = 1
MODEL_KEYS = ("checkpoint", "clip_l", "clip_g", "t5xxl", "ae", "vae")

_EPOCH_FILE = re.compile(r"-(\d{6})\.safetensors$")
_STEP_FILE = re.compile(r"-step(\d{8})\.safetensors$")


class RunFailure(Exception):
    """A known way for a run to fail before or around the trainer (reason + message)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


class NotEnoughMemory(Exception):
    """The GPU has less free memory than planned: the run goes back to the queue."""


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the worker that started us dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


@functools.cache
def _setpriv() -> str | None:
    return shutil.which("setpriv")


def _with_parent_death_signal(argv: list[str]) -> tuple[list[str], object]:
    """(argv, preexec_fn) that start the trainer with SIGKILL as its parent-death signal.

    util-linux's `setpriv --pdeathsig KILL` sets it and execs the trainer in the same
    process. A Python preexec_fn does the same but makes subprocess fork this large worker
    instead of vfork-ing it, about 5 ms more on every start; it stays as the fallback.
    """
    setpriv = _setpriv()
    if setpriv:
        return [setpriv, "--pdeathsig", "KILL", "--", *argv], None
    return list(argv), _die_with_parent


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
        if not nvml.group_pids(pgid):
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if proc is not None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


class LogWriter:
    """Batches log lines into RunLog chunks (seq 1, 2, 3 … without gaps) and pushes them."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        last = RunLog.objects.filter(run_id=run_id).order_by("-seq").values_list("seq", flat=True)
        self.seq = last.first() or 0
        self.lines: list[str] = []
        self.written = 0
        self.dropped = 0
        self.last_flush = time.monotonic()

    def add(self, line: str) -> None:
        if self.written >= MAX_LOG_BYTES:
            self.dropped += 1
            return
        self.lines.append(line)
        self.written += len(line) + 1

    def due(self) -> bool:
        return bool(self.lines) and time.monotonic() - self.last_flush >= LOG_FLUSH_S

    def flush(self) -> None:
        self.last_flush = time.monotonic()
        if self.dropped and self.written >= MAX_LOG_BYTES:
            self.lines.append(f"[LoRA Studio: log limit reached; {self.dropped} lines not kept]")
            self.dropped = 0
            self.written += 1  # note it once
        if not self.lines:
            return
        text = "\n".join(self.lines) + "\n"
        self.lines = []
        self.seq += 1
        RunLog.objects.create(run_id=self.run_id, seq=self.seq, text=text)
        notify(f"run-{self.run_id}", {"type": "run.log", "seq": self.seq, "text": text})


class _Heartbeat:
    """Beats the run's heartbeat from a thread while the main thread is busy preparing."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name=f"beat-{run_id}")

    def _loop(self) -> None:
        try:
            while not self.stop.wait(HEARTBEAT_S):
                try:
                    TrainingRun.objects.filter(pk=self.run_id).update(heartbeat_at=timezone.now())
                except Exception:
                    logger.exception("Heartbeat of run %s failed", self.run_id)
        finally:
            connection.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)


def _reader(stream, name: str, out: queue.Queue) -> None:
    """Move raw output into the queue as decoded text until EOF (the pipe never fills)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    fd = stream.fileno()
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            out.put((name, decoder.decode(b"", final=True)))
            out.put((name, None))
            return
        out.put((name, decoder.decode(data)))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _output_name(run: TrainingRun) -> str:
    base = re.sub(r"[^A-Za-z0-9_-]+", "_", run.name or "lora").strip("_")[:40] or "lora"
    return f"{base}-run{run.pk}"


class Runner:
    """Trains one run; `run()` always leaves it in a terminal state (or back in the queue)."""

    def __init__(self, run: TrainingRun):
        self.run = run
        self.log = LogWriter(run.pk)
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.proc: subprocess.Popen | None = None
        self.pgid: int | None = None
        self.cancelled = False
        self.collected: set[str] = set()
        self.announced: list[str] = []
        self.peak_mib: int | None = None
        self.backend = settings.LORASTUDIO_GPU_BACKEND

    # -- steps -------------------------------------------------------------------------
    def run_all(self) -> str:
        run = self.run
        try:
            transition(
                run,
                RunStatus.PREPARING,
                expect=RunStatus.ASSIGNED,
                note="Preparing the work directory.",
                changes={"heartbeat_at": timezone.now()},
            )
            with _Heartbeat(run.pk):
                command = self.prepare()
                self.free_vram()
            if self._cancel_requested():
                self._end(RunStatus.CANCELLED, note="Cancelled before the trainer started.")
                return RunStatus.CANCELLED
            self.start(command)
            self.monitor()
            return self.finish(command)
        except NotEnoughMemory as exc:
            self.say(f"[LoRA Studio] {exc} Back to the queue.")
            self._requeue(str(exc))
            return RunStatus.QUEUED
        except RunFailure as exc:
            self.say(f"[LoRA Studio] {exc.message}")
            self._end(RunStatus.FAILED, reason=exc.reason, note=exc.message)
            return RunStatus.FAILED
        except Exception as exc:
            logger.exception("Run %s crashed in the runner", run.pk)
            for line in traceback.format_exc().splitlines():
                self.log.add(line)
            self._end(
                RunStatus.FAILED,
                reason=FailureReason.TRAINER_ERROR,
                note=f"The runner failed: {type(exc).__name__}: {exc}",
            )
            return RunStatus.FAILED
        finally:
            self.cleanup()

    def say(self, line: str) -> None:
        self.log.add(line)
        self.tail.append(line)

    def prepare(self):
        """Write the work directory: dataset export, TOML, prompts and the argv record."""
        from datasets.export import export_dataset
        from training import kohya

        run, node = self.run, self.run.node
        arch = run.base_model.architecture
        work = Path(node.work_dir or settings.LORASTUDIO_WORK_DIR) / f"run-{run.pk}"
        if work.exists():
            shutil.rmtree(work)
        (work / "output").mkdir(parents=True)
        if run.dataset is None:
            raise RunFailure(FailureReason.MISSING_FILES, "The run's dataset was deleted.")
        subsets = []
        for dataset, is_reg in ((run.dataset, False), (run.regularization_dataset, True)):
            if dataset is None:
                continue
            dest = work / "data" / ("reg" if is_reg else "train")
            exported = export_dataset(dataset, dest, is_reg=is_reg)
            if not exported.image_count:
                raise RunFailure(FailureReason.CONFIG, f"Dataset {dataset.name} has no images.")
            subsets.append(
                kohya.Subset(
                    image_dir=str(exported.image_dir),
                    num_repeats=exported.num_repeats,
                    class_tokens=exported.class_tokens,
                    caption_extension=exported.caption_extension,
                    is_reg=is_reg,
                )
            )
        files = run.base_model.model_files(node.models_root)
        missing = [p for p in files.values() if not os.path.exists(p)]
        if arch != Architecture.DEMO and missing:
            raise RunFailure(
                FailureReason.MISSING_FILES,
                f"{node.name} lacks model files: {', '.join(missing)}",
            )
        if arch == Architecture.DEMO:
            python, sdscripts = sys.executable, ""
        else:
            python = node.sdscripts_python or "python3"
            sdscripts = node.sdscripts_dir
            if not sdscripts:
                raise RunFailure(FailureReason.CONFIG, f"{node.name} has no sd-scripts folder set.")
        job = kohya.TrainJob(
            architecture=arch,
            model=kohya.ModelFiles(**{k: files.get(k, "") for k in MODEL_KEYS}),
            subsets=tuple(subsets),
            params=dict(run.params),
            work_dir=str(work),
            output_dir=str(work / "output"),
            output_name=_output_name(run),
            logging_dir=str(work / "logs"),
            python=python,
            sdscripts_dir=sdscripts,
            sample_prompts=tuple(p for p in run.sample_prompts.splitlines() if p.strip()),
            extra_flags=tuple(run.extra_flags or ()),
        )
        try:
            built = kohya.build_command(job)
        except (ValueError, KeyError) as exc:
            raise RunFailure(FailureReason.CONFIG, f"Could not build the command: {exc}") from exc
        (work / kohya.DATASET_TOML).write_text(built.dataset_config)
        (work / kohya.SAMPLE_PROMPTS_TXT).write_text(built.sample_prompts)
        (work / "argv.json").write_text(json.dumps(built.argv, indent=1))
        self.work = work
        self.job = job
        self.samples = SampleCollector(
            run.pk, work / "output" / "sample", prompts=job.sample_prompts, store=self._store
        )
        self.say(f"[LoRA Studio] Work directory {work}")
        return built

    def _gpu_free_mib(self) -> int | None:
        report = nvml.read_gpus(self.backend, settings.LORASTUDIO_FAKE_GPUS)
        for reading in report.gpus:
            if reading.index == self.run.gpu.index:
                return reading.free_mib
        return None

    def free_vram(self) -> None:
        """Ask ComfyUI/SwarmUI for their memory, wait for it, and re-check free memory."""
        run, node = self.run, self.run.node
        if run.gpu_id is None:
            return
        need = run.vram_estimate_mib or 0
        asked = False
        if node.comfyui_url and node.comfyui_unload != "none":
            try:
                comfyui.comfyui_free(node.comfyui_url)
                asked = True
                self.say("[LoRA Studio] Asked ComfyUI to unload its models.")
            except comfyui.UIError as exc:
                self.say(f"[LoRA Studio] ComfyUI did not answer: {exc}")
        if node.swarmui_url:
            try:
                comfyui.swarmui_free(node.swarmui_url)
                asked = True
                self.say("[LoRA Studio] Asked SwarmUI to free its backends' memory.")
            except comfyui.UIError as exc:
                self.say(f"[LoRA Studio] SwarmUI did not answer: {exc}")
        free = self._gpu_free_mib()
        # ComfyUI's /free only sets a flag its prompt worker acts on later: poll NVML.
        deadline = time.monotonic() + (FREE_WAIT_S if asked else 0)
        while free is not None and free < need and time.monotonic() < deadline:
            time.sleep(0.5)
            free = self._gpu_free_mib()
        if free is None:
            raise RunFailure(
                FailureReason.NODE_OFFLINE, f"GPU {run.gpu.index} is not visible on {node.name}."
            )
        if free < need:
            # Record what we measured so that dispatch does not send the run straight back.
            GPU.objects.filter(pk=run.gpu_id).update(free_mib=free, updated_at=timezone.now())
            raise NotEnoughMemory(
                f"GPU {run.gpu.index} on {node.name} has {free / 1024:.1f} GB free, "
                f"the run needs {need / 1024:.1f} GB."
            )

    def start(self, command) -> None:
        """Start the trainer in its own session; store its process group; mark it running."""
        run = self.run
        env = dict(os.environ)
        env.update(command.env)
        env["PYTHONUNBUFFERED"] = "1"
        env["CUDA_VISIBLE_DEVICES"] = str(run.gpu.index) if run.gpu_id else ""
        cwd = command.cwd or str(settings.BASE_DIR)
        self.say("[LoRA Studio] Starting: " + " ".join(command.argv))
        argv, preexec_fn = _with_parent_death_signal(list(command.argv))
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
        self.pgid = self.proc.pid
        transition(
            run,
            RunStatus.RUNNING,
            expect=RunStatus.PREPARING,
            note="The trainer is running.",
            changes={
                "pgid": self.pgid,
                "argv": list(command.argv),
                "dataset_config": command.dataset_config,
                "work_dir": str(self.work),
                "heartbeat_at": timezone.now(),
            },
        )

    def _cancel_requested(self) -> bool:
        return TrainingRun.objects.filter(
            pk=self.run.pk, cancel_requested_at__isnull=False
        ).exists()

    def monitor(self) -> None:
        """Read the trainer's output until it exits; beat, push progress, honour cancel."""
        out: queue.Queue = queue.Queue()
        readers = [
            threading.Thread(target=_reader, args=(s, n, out), daemon=True)
            for s, n in ((self.proc.stdout, "stdout"), (self.proc.stderr, "stderr"))
        ]
        for t in readers:
            t.start()
        splitters = {"stdout": StreamSplitter(), "stderr": StreamSplitter()}
        open_streams = {"stdout", "stderr"}
        self.dirty = False
        self.last_progress = 0.0
        last_beat = last_vram = 0.0
        exited_at = None
        while open_streams:
            try:
                name, text = out.get(timeout=0.1)
                if text is None:
                    open_streams.discard(name)
                    for piece in splitters[name].flush():
                        self.handle(piece)
                else:
                    for piece in splitters[name].feed(text):
                        self.handle(piece)
            except queue.Empty:
                pass
            now = time.monotonic()
            if self.log.due():
                self.log.flush()
            if self.dirty and now - self.last_progress >= PROGRESS_FLUSH_S:
                self.push_progress()
            if now - last_beat >= HEARTBEAT_S:
                last_beat = now
                TrainingRun.objects.filter(pk=self.run.pk).update(heartbeat_at=timezone.now())
                if not self.cancelled and self._cancel_requested():
                    self.cancelled = True
                    self.say("[LoRA Studio] Cancel requested: stopping the trainer.")
                    self.log.flush()
                    stop_group(self.pgid, self.proc, grace=TERM_GRACE_S)
            if self.samples.due():
                self.samples.scan()  # shows samples on the run page as they appear
            if self.backend == "nvml" and now - last_vram >= VRAM_POLL_S:
                last_vram = now
                used = nvml.process_memory_mib(self.backend, nvml.group_pids(self.pgid))
                if used is not None:
                    self.peak_mib = max(self.peak_mib or 0, used)
            if self.proc.poll() is not None:
                # Children that kept our pipes open must not keep us waiting.
                exited_at = exited_at or now
                if now - exited_at > 2.0:
                    stop_group(self.pgid, None, grace=0.5)
                if now - exited_at > 5.0:
                    break
        self.proc.wait()
        if self.dirty:
            self.push_progress()

    def handle(self, piece) -> None:
        """Route one piece of output: progress → fields, real lines → log and parsers."""
        if piece.kind == "progress" or is_progress_noise(piece.text):
            progress = parse_progress(piece.text)
            if progress is None:
                return
            run = self.run
            run.step, run.total_steps = progress.step, progress.total
            run.speed = progress.rate
            run.eta_seconds = progress.remaining_s
            if progress.loss is not None and progress.step > 0:
                run.loss = progress.loss
                points = run.loss_points or []
                if not points or points[-1][0] != progress.step:
                    points.append([progress.step, progress.loss])
                    if len(points) > MAX_LOSS_POINTS:
                        last = points[-1]
                        points = points[::2]
                        if points[-1] != last:
                            points.append(last)
                run.loss_points = points
            self.dirty = True
            return
        line = piece.text
        self.say(line)
        epoch = parse_epoch(line)
        if epoch is not None:
            self.run.epoch, self.run.total_epochs = epoch
            self.dirty = True
        total = parse_total_steps(line)
        if total is not None:
            self.run.total_steps = total
            self.dirty = True
        saved = parse_saved_path(line)
        if saved is not None:
            # The file is complete once the next one is announced (or the trainer ends).
            for path in self.announced:
                self.collect_file(Path(path))
            self.announced = [saved]

    def push_progress(self) -> None:
        run = self.run
        self.last_progress = time.monotonic()
        self.dirty = False
        TrainingRun.objects.filter(pk=run.pk).update(
            step=run.step,
            total_steps=run.total_steps,
            epoch=run.epoch,
            total_epochs=run.total_epochs,
            loss=run.loss,
            speed=run.speed,
            eta_seconds=run.eta_seconds,
            loss_points=run.loss_points,
        )
        notify(f"run-{run.pk}", {"type": "run.progress", "state": run_state(run)})

    # -- files ---------------------------------------------------------------------------
    def collect_file(self, path: Path) -> LoraArtifact | None:
        """Hard-link (or copy) a LoRA into MEDIA_ROOT/runs/<id>/ and record it once."""
        if not path.is_file() or path.suffix != ".safetensors" or str(path) in self.collected:
            return None
        self.collected.add(str(path))
        name = path.name
        epoch = step = None
        if m := _EPOCH_FILE.search(name):
            kind, epoch = ArtifactKind.EPOCH, int(m[1])
        elif m := _STEP_FILE.search(name):
            kind, step = ArtifactKind.STEP, int(m[1])
        else:
            kind = ArtifactKind.FINAL
        stored = self._store(path)
        return LoraArtifact.objects.create(
            run=self.run,
            kind=kind,
            epoch=epoch,
            step=step,
            file=stored,
            size_bytes=path.stat().st_size,
            sha256=_sha256(path),
        )

    def _store(self, path: Path) -> str:
        """Place a file under MEDIA_ROOT/runs/<id>/ (shared storage on multi-node labs)."""
        relative = f"runs/{self.run.pk}/{path.name}"
        dest = Path(settings.MEDIA_ROOT) / relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            dest.unlink()
        try:
            os.link(path, dest)
        except OSError:
            shutil.copy2(path, dest)
        return relative

    def collect_all(self, output_dir: Path) -> Path:
        """Collect every LoRA and sample the trainer left; return the final LoRA's path."""
        final = output_dir / f"{self.job.output_name}.safetensors"
        for path in sorted(output_dir.glob(f"{self.job.output_name}*.safetensors")):
            if path != final:
                self.collect_file(path)
        self.collect_file(final)
        self.samples.scan(final=True)
        return final

    def publish(self, final: Path) -> str:
        """Copy the final LoRA into the node's LoRA folder, in a per-user subfolder."""
        lora_dir = self.run.node.lora_dir
        if not lora_dir or not final.is_file():
            return ""
        dest = Path(lora_dir) / self.run.owner.username / final.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(final, dest)
        LoraArtifact.objects.filter(run=self.run, kind=ArtifactKind.FINAL).update(
            published_path=str(dest)
        )
        return str(dest)

    def finish(self, command) -> str:
        """Classify the exit, collect the files, publish, and end the run."""
        returncode = self.proc.returncode
        output_dir = Path(self.job.output_dir)
        final = self.collect_all(output_dir)
        outcome = classify_exit(returncode, "\n".join(self.tail), final.is_file(), self.cancelled)
        changes = {"exit_code": returncode}
        if outcome.status == "succeeded":
            published = self.publish(final)
            note = outcome.message + (f" Published to {published}." if published else "")
            self._end(RunStatus.SUCCEEDED, note=note, changes=changes)
        elif outcome.status == "cancelled":
            self._end(RunStatus.CANCELLED, note=outcome.message, changes=changes)
        else:
            note = outcome.message
            if outcome.reason == "oom":
                note += " " + self._oom_advice()
            self._end(RunStatus.FAILED, reason=outcome.reason, note=note, changes=changes)
        return outcome.status

    def _oom_advice(self) -> str:
        """What the planner would change to fit in less memory than it estimated."""
        from training import vram

        run = self.run
        budget = run.gpu.total_mib if run.gpu_id else 0
        estimate = run.vram_estimate_mib or budget
        try:
            tighter = vram.plan(run.base_model.architecture, dict(run.params), int(estimate * 0.75))
        except Exception:
            return "Try a smaller batch size or resolution."
        if tighter.savers:
            names = ", ".join(s.name for s in tighter.savers)
            return f"Try again with these memory savers: {names} (or a smaller batch)."
        return "Try a smaller batch size or resolution."

    # -- endings -------------------------------------------------------------------------
    def _end(self, to: str, *, reason: str = "", note: str = "", changes=None) -> None:
        changes = dict(changes or {})
        changes["pgid"] = None
        if self.peak_mib:
            changes["vram_peak_mib"] = self.peak_mib
        self.log.flush()
        try:
            transition(self.run, to, reason=reason, note=note, changes=changes)
        except TransitionError as exc:
            # E.g. the reaper declared the worker lost meanwhile: its verdict stands.
            logger.warning("Run %s could not end as %s: %s", self.run.pk, to, exc)

    def _requeue(self, message: str) -> None:
        self.log.flush()
        try:
            transition(
                self.run,
                RunStatus.QUEUED,
                note=message,
                changes={"node": None, "gpu": None, "heartbeat_at": None, "pgid": None},
            )
        except TransitionError as exc:
            logger.warning("Run %s could not go back to the queue: %s", self.run.pk, exc)

    def cleanup(self) -> None:
        """Always: stop the process group, flush the log, then dispatch again."""
        if self.proc is not None:
            stop_group(self.pgid, self.proc, grace=1.0)
        try:
            self.log.flush()
        except Exception:
            logger.exception("Could not write the last log chunk of run %s", self.run.pk)
        try:
            from training.scheduler import dispatch

            dispatch()
        except Exception:
            logger.exception("Dispatch after run %s failed", self.run.pk)


def execute(run_id: int) -> str:
    """Train run `run_id` if it is still `assigned`; return how it ended (or "skipped")."""
    close_old_connections()
    # Only the joins every step needs: on PostgreSQL a six-table join took ~6 ms to plan and
    # build, against ~1 ms for the dataset and owner looked up when they are used.
    run = TrainingRun.objects.select_related("node", "gpu", "base_model").filter(pk=run_id).first()
    if run is None or run.status != RunStatus.ASSIGNED:
        # A redelivered or stale task: the run already started, ended or went away.
        logger.info("Run %s is not assigned (%s); nothing to do", run_id, run and run.status)
        return "skipped"
    return Runner(run).run_all()
