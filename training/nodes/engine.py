"""check_node's questions to the node's own sd-scripts: optional modules and tokenizers.

Each runs a program of `sdscripts.engine` with the node's sd-scripts Python, in its folder,
with the environment its trainer gets (process.trainer_environment: the allowed part of ours
and the node's trainer env, as the runner starts it), so the answer is what a run on this
node would meet.
"""

from __future__ import annotations

import os
import subprocess

from django.conf import settings

from sdscripts.architectures import ARCHITECTURES
from sdscripts.engine import (
    MARK,
    MODULES_PROGRAM,
    OFFLINE_ENV,
    TOKENIZERS_PROGRAM,
    missing_from_cache,
    offline_env,
    optimizers_needing,
    optional_modules,
    parse_answers,
    strategy_name,
    tokenizer_request,
)
from training.execution.process import trainer_environment
from training.models import BaseModel, GPUNode
from training.nodes.report import FAIL, OK, WARN, Check

# Importing torch, transformers and bitsandbytes from a cold disk takes a while.
CHECK_TIMEOUT_S = 180
TOKENIZER_FIX = (
    "give the node its tokenizers: register_node --tokenizer-cache-dir DIR with a folder that "
    "holds them (sd-scripts saves them there on a run with internet; copy such a folder "
    "here), or a filled Hugging Face cache: register_node --trainer-env HF_HOME=DIR "
    "--trainer-env HF_HUB_OFFLINE=1"
)


def run_program(
    node: GPUNode, program: str, args: list[str], env: dict[str, str] | None = None
) -> tuple[dict[str, str], str]:
    """Run `program` in the node's sd-scripts Python; its answers, and why there are none."""
    own = {**(node.trainer_env or {}), **(env or {})}
    full_env = trainer_environment(os.environ, own, settings.LORASTUDIO_TRAINER_ENV)
    try:
        result = subprocess.run(
            [node.sdscripts_python, "-c", program, MARK, *args],
            cwd=node.sdscripts_dir,
            env=full_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=CHECK_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return {}, f"no answer within {CHECK_TIMEOUT_S} s"
    except OSError as exc:
        return {}, f"{node.sdscripts_python}: {exc.strerror or exc}"
    why = ""
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        why = f"exit code {result.returncode}: {last}"
    return parse_answers(result.stdout), why


def check_engine_modules(node: GPUNode) -> Check:
    """Import each optional optimizer module; store {module: importable} on the node."""
    modules = optional_modules()
    answers, why = run_program(node, MODULES_PROGRAM, list(modules))
    if not answers:
        return Check(
            "optimizer modules",
            WARN,
            f"could not check: {why or 'no answer'}",
            "run check_node again; if it persists, repair sd-scripts' venv",
        )
    # A module the program never answered for (it died on an earlier one) counts as missing.
    errors = {m: answers.get(m, f"not checked: {why or 'no answer'}") for m in modules}
    found = {m: not errors[m] for m in modules}
    GPUNode.objects.filter(pk=node.pk).update(engine_modules=found)
    missing = [m for m in modules if not found[m]]
    if not missing:
        return Check("optimizer modules", OK, "all import: " + ", ".join(modules))
    detail = "; ".join(f"{m} for {', '.join(optimizers_needing(m))}: {errors[m]}" for m in missing)
    return Check(
        "optimizer modules",
        WARN,
        f"cannot import {detail}",
        f"{node.sdscripts_python} -m pip install {' '.join(missing)} (then check_node again); "
        "until then runs on this node cannot use these optimizers",
    )


def _architectures_in_use() -> list[str]:
    """The architectures of the enabled base models that load tokenizers, registry order."""
    used = set(BaseModel.objects.filter(enabled=True).values_list("architecture", flat=True))
    return [k for k, s in ARCHITECTURES.items() if k in used and s.tokenizers is not None]


def _cache_folders(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _lacking(node: GPUNode, arch_key: str) -> tuple[str, ...]:
    """The repositories missing from the node's tokenizer cache folder (none without one)."""
    if not node.tokenizer_cache_dir:
        return ()
    tokenizers = ARCHITECTURES[arch_key].tokenizers
    return missing_from_cache(tokenizers, _cache_folders(node.tokenizer_cache_dir))


def _where(node: GPUNode, arch_key: str) -> str:
    """Where the tokenizers are looked for without the Hub, and what is missing there."""
    if not node.tokenizer_cache_dir:
        hf_home = (node.trainer_env or {}).get("HF_HOME") or os.environ.get("HF_HOME")
        cache = f"HF_HOME {hf_home}" if hf_home else "the default Hugging Face cache"
        return f"no tokenizer cache folder; not in {cache}"
    missing = _lacking(node, arch_key)
    if missing:
        return f"{node.tokenizer_cache_dir} lacks {', '.join(missing)}"
    return f"{node.tokenizer_cache_dir} holds them, but they do not load"


def _tokenizer_check(key: str, as_run: str, offline: str | None, where: str, saved: str) -> Check:
    """One architecture's line from its two loads: as a run does (`as_run`) and with the Hub
    switched off (`offline`; None when the trainer env already switches it off). Each is ""
    when it loaded, else the error."""
    label = f"tokenizers {key}"
    repos = ", ".join(ARCHITECTURES[key].tokenizers.repos)
    if offline is None:  # HF_HUB_OFFLINE=1 in the trainer env: one load says it all
        if not as_run:
            return Check(label, OK, f"loads {repos} offline")
        return Check(label, FAIL, f"cannot load {repos} ({where}): {as_run}", TOKENIZER_FIX)
    if not as_run and not offline:
        return Check(label, OK, f"loads {repos}, also with the Hub off{saved}")
    if not as_run:
        return Check(
            label,
            WARN,
            f"loads {repos} only from the Hugging Face Hub ({where})",
            "runs fail whenever this node cannot reach huggingface.co; for offline runs "
            + TOKENIZER_FIX,
        )
    if not offline:
        # Seen with transformers 4.54: a tokenizer in the Hugging Face cache still makes it
        # ask the Hub for more files unless HF_HUB_OFFLINE is set, and that fails offline.
        return Check(
            label,
            FAIL,
            f"cannot load {repos} as a run does: {as_run}; with the Hub off they load{saved}",
            "this node cannot reach huggingface.co: register_node --trainer-env "
            "HF_HUB_OFFLINE=1 (or the node's trainer environment in the admin)"
            + ("; or check again: runs read the tokenizer cache folder first" if saved else ""),
        )
    detail = f"cannot load {repos} ({where}): {offline}; nor from the Hub: {as_run}"
    return Check(label, FAIL, detail, TOKENIZER_FIX)


def check_tokenizers(node: GPUNode) -> list[Check]:
    """Whether each architecture of the enabled base models loads its tokenizers, and whether
    it does without internet.

    sd-scripts loads them at the start of every run, from the tokenizer cache folder, else
    the Hugging Face cache, else the Hub. They are loaded twice: as a run does (the node's
    trainer env), then with the Hub switched off. Tokenizers that load only from the Hub are a
    warning (runs work while the node can reach huggingface.co); a first run that must fail
    is a failure.
    """
    archs = _architectures_in_use()
    if not archs:
        return []
    cache = node.tokenizer_cache_dir
    request = [tokenizer_request(archs, cache)]
    name = {k: strategy_name(ARCHITECTURES[k].tokenizers) for k in archs}
    # Before the first load: sd-scripts saves what it loads into the cache folder.
    where = {k: _where(node, k) for k in archs}
    lacking = {k: bool(_lacking(node, k)) for k in archs}
    answers, why = run_program(node, TOKENIZERS_PROGRAM, request)
    as_run = {k: answers.get(name[k], why or "no answer") for k in archs}
    offline: dict[str, str | None] = dict.fromkeys(archs)
    if not offline_env(node.trainer_env or {}):
        answers, why = run_program(node, TOKENIZERS_PROGRAM, request, OFFLINE_ENV)
        offline = {k: answers.get(name[k], why or "no answer") for k in archs}
    checks = []
    for key in archs:
        saved = ""
        if lacking[key] and ARCHITECTURES[key].tokenizers.cache_layout == "saved":
            saved = f" (sd-scripts just saved them into {cache})"
        checks.append(_tokenizer_check(key, as_run[key], offline[key], where[key], saved))
    return checks
