"""Giving the GPU to training and back to ComfyUI/SwarmUI, as the node is set.

Mode "free" asks the servers to free their memory before training (training.execution.memory)
and nothing after: ComfyUI reloads its models on the next prompt. Mode "stop", for labs that
stop the inference server while training: the node's staff-set stop command runs before the
trainer starts and its start command after the run ends (whatever way), then we wait until
the server answers again. Commands are argument lists, run without a shell, with a timeout;
both are recorded on the run's timeline and in its log. While it is stopped the node is
marked (`GPUNode.inference_stopped`), so no evaluation is placed there before it answers.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

from sdscripts.command import command_text
from training.choices import ComfyUnloadMode, EventKind
from training.lifecycle import record_action
from training.models import GPUNode, TrainingRun
from training.nodes.setup import answers

COMMAND_TIMEOUT_S = 120.0
POLL_S = 1.0


def run_command(argv: list[str], *, timeout: float = COMMAND_TIMEOUT_S) -> tuple[bool, str]:
    """Run a staff-set command; (whether it exited 0, what to record)."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        return False, f"{argv[0]} was not found"
    except subprocess.TimeoutExpired:
        return False, f"it did not finish within {timeout:.0f} s"
    except OSError as exc:
        return False, str(exc)
    seconds = time.monotonic() - started
    output = (done.stderr or done.stdout or b"").decode(errors="replace").strip()
    tail = f": {output.splitlines()[-1][:200]}" if output and done.returncode else ""
    return done.returncode == 0, f"exit {done.returncode}, {seconds:.1f} s{tail}"


def check_url(node) -> str:
    """The address that answers when the node's inference server is up."""
    if node.comfyui_url:
        return node.comfyui_url.rstrip("/") + "/system_stats"
    return node.swarmui_url.rstrip("/") + "/"


def wait_until_up(url: str, timeout: float) -> float | None:
    """Seconds until `url` answered, or None when it did not within `timeout`."""
    started = time.monotonic()
    while True:
        if answers(url, timeout=2.0):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            return None
        time.sleep(POLL_S)


def stops_for_training(node) -> bool:
    return node.comfyui_unload == ComfyUnloadMode.STOP and bool(node.inference_stop_command)


def stop_for_training(run: TrainingRun, say: Callable[[str], None]) -> bool:
    """In mode "stop", run the node's stop command; whether the server is to be started
    again after the run (also when the command failed: it may have stopped it anyway)."""
    node = run.node
    if node is None or not stops_for_training(node):
        return False
    # Evaluations wait from now until it answers again (placement.py), also after the run.
    GPUNode.objects.filter(pk=node.pk).update(inference_stopped=True)
    argv = list(node.inference_stop_command)
    ok, detail = run_command(argv)
    verb = "Stopped" if ok else "Could not stop"
    note = f"{verb} the inference server for training: {command_text(argv)} ({detail})."
    say(f"[LoRA Studio] {note}")
    record_action(run, kind=EventKind.SERVER, note=note)
    return True


def start_after_training(run: TrainingRun, say: Callable[[str], None]) -> None:
    """Run the node's start command and wait until the server answers; recorded. Another
    run still training on the node keeps it stopped: the last one to end starts it."""
    node = run.node
    others = TrainingRun.objects.on_gpu().filter(node=node).exclude(pk=run.pk)
    if others.exists():
        note = "The inference server stays stopped: another run trains on this node."
        say(f"[LoRA Studio] {note}")
        record_action(run, kind=EventKind.SERVER, note=note)
        return
    argv = list(node.inference_start_command)
    ok, detail = run_command(argv)
    note = f"Started the inference server: {command_text(argv)} ({detail})"
    if not ok:
        note = f"The start command failed: {command_text(argv)} ({detail}). Start it by hand."
    else:
        waited = wait_until_up(check_url(node), node.inference_start_timeout)
        if waited is None:
            note += (
                f"; it did not answer at {check_url(node)} within "
                f"{node.inference_start_timeout} s: check its service."
            )
        else:
            note += f"; it answered after {waited:.1f} s."
            GPUNode.objects.filter(pk=node.pk).update(inference_stopped=False)
    say(f"[LoRA Studio] {note}")
    record_action(run, kind=EventKind.SERVER, note=note)
