"""What check_node asks a node's sd-scripts, and the probe's one-step run (pure).

sd-scripts is an external program with its own venv, so its packages can only be tried in its
own Python: check_node runs the small programs here there. One imports the optional modules
the optimizers need (`OPTIMIZER_MODULES`); one builds each architecture's TokenizeStrategy,
exactly as the trainer does at the start of a run (the registry's `Tokenizers`), with the Hub
switched off. Both print one JSON answer per line after a marker, because sd-scripts' logging
writes to stdout too. `check_node --probe` trains one step with `probe_params`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from sdscripts import vram
from sdscripts.architectures import Tokenizers, spec
from sdscripts.params import OPTIMIZER_MODULES, validate_params

MARK = "@lorastudio-check "
# Both programs take the marker as argv[1]; `python -c` puts the working directory (the
# sd-scripts checkout) first on sys.path, so `library.*` imports as the trainer imports it.
MODULES_PROGRAM = """
import importlib, json, sys
for name in sys.argv[2:]:
    try:
        importlib.import_module(name)
        error = ""
    except BaseException as exc:  # a broken install may raise anything, even SystemExit
        error = f"{type(exc).__name__}: {exc}"
    print(sys.argv[1] + json.dumps({"name": name, "error": error}), flush=True)
"""
TOKENIZERS_PROGRAM = """
import importlib, json, sys
for item in json.loads(sys.argv[2]):
    try:
        strategy = getattr(importlib.import_module(item["module"]), item["strategy"])
        strategy(*item["args"], tokenizer_cache_dir=item["cache"] or None)
        error = ""
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
    print(sys.argv[1] + json.dumps({"name": item["name"], "error": error}), flush=True)
"""
# Switch the Hugging Face Hub off, as on a node without internet (transformers reads both).
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
MAX_ERROR = 300

# The probe: one step at the smallest resolution sd-scripts trains, rank 1, no samples, with
# torch's own AdamW (the optional optimizer modules are checked on their own).
PROBE_VALUES: dict[str, object] = {
    "resolution": 64,
    "train_batch_size": 1,
    "max_train_steps": 1,
    "network_dim": 1,
    "network_alpha": 1.0,
    "optimizer_type": "AdamW",
    "sample_every_n_epochs": 0,
    "enable_bucket": False,
}
# Without a GPU: no mixed precision (fp16 autocast needs CUDA) and a float LoRA.
CPU_VALUES: dict[str, object] = {"mixed_precision": "no", "save_precision": "float"}
PROBE_OUTPUT_NAME = "probe"
PROBE_CAPTIONS = ("a red square", "a blue circle")


def optional_modules() -> tuple[str, ...]:
    """Every optional module some optimizer needs, sorted (torch's own need none)."""
    return tuple(sorted({m for m in OPTIMIZER_MODULES.values() if m}))


def optimizers_needing(module: str) -> tuple[str, ...]:
    """The optimizers that import `module`."""
    return tuple(name for name, m in OPTIMIZER_MODULES.items() if m == module)


def strategy_name(tokenizers: Tokenizers) -> str:
    """How the tokenizer program names one strategy ("library.strategy_sd.SdTokenizeStrategy")."""
    return f"{tokenizers.module}.{tokenizers.strategy}"


def tokenizer_request(architectures: Iterable[str], cache_dir: str) -> str:
    """The tokenizer program's argument: each distinct strategy of `architectures` once."""
    items: dict[str, dict] = {}
    for key in architectures:
        tokenizers = spec(key).tokenizers
        if tokenizers is not None:
            items.setdefault(
                strategy_name(tokenizers),
                {
                    "name": strategy_name(tokenizers),
                    "module": tokenizers.module,
                    "strategy": tokenizers.strategy,
                    "args": list(tokenizers.args),
                    "cache": cache_dir,
                },
            )
    return json.dumps(list(items.values()))


def parse_answers(stdout: str) -> dict[str, str]:
    """{name: error} from the marked lines of a program's output ("" = it worked)."""
    answers = {}
    for line in stdout.splitlines():
        if line.startswith(MARK):
            try:
                row = json.loads(line[len(MARK) :])
                answers[str(row["name"])] = " ".join(str(row["error"]).split())[:MAX_ERROR]
            except (ValueError, KeyError, TypeError):
                continue
    return answers


def missing_from_cache(tokenizers: Tokenizers, present: Iterable[str]) -> tuple[str, ...]:
    """The repositories of `tokenizers` whose folder is not among `present` (folder names in
    the tokenizer cache folder)."""
    names = set(present)
    return tuple(r for r in tokenizers.repos if tokenizers.cache_folder(r) not in names)


def offline_env(trainer_env: Mapping[str, str]) -> bool:
    """Whether a trainer environment already keeps the Hub off (HF_HUB_OFFLINE set true)."""
    value = str(trainer_env.get("HF_HUB_OFFLINE", "")).strip().lower()
    return value in ("1", "true", "yes", "on")


def probe_params(architecture: str, *, cpu: bool) -> dict:
    """The probe's validated parameters for `architecture` (savers not yet planned)."""
    return validate_params(architecture, {**PROBE_VALUES, **(CPU_VALUES if cpu else {})})


def probe_estimate_mib(architecture: str) -> int:
    """The probe's memory estimate on a GPU: how the smallest base model is chosen."""
    return vram.estimate_vram(architecture, probe_params(architecture, cpu=False)).total_mib
