"""What the compare page and the run report show, gathered once for HTML and PDF alike.

Reads only. `compare(a, b)` puts two runs side by side (parameters, inputs and software,
dataset differences, loss curves, samples); `report(run)` is the hand-in report of one run
(purpose, dataset and contact sheet, parameters, provenance, loss curve, samples, GPU time
and energy, files' hashes). training/report_pdf.py turns `report(run)` into a PDF.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field

from django.conf import settings
from PIL import Image, UnidentifiedImageError

from datasets.fingerprint import dataset_entries, difference
from sdscripts.command import command_text
from training import energy
from training.charts import loss_chart
from training.provenance.exact import final_trainer_sha256, provenance_of

CONTACT_SHEET_MAX = 120
CONTACT_THUMB_PX = 96


@dataclass(frozen=True)
class Row:
    """One line of a side-by-side table."""

    name: str
    a: str
    b: str

    @property
    def differs(self) -> bool:
        return self.a != self.b


def _text(value) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return str(value)


def gpu_time(seconds: float) -> str:
    """Seconds as "1 h 02 min", "3 min 20 s" or "12 s"."""
    seconds = int(round(seconds or 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


CPU_ONLY = "— (trained on the CPU, no GPU)"


def _on_cpu(run) -> bool:
    return run.gpu_id is None and not run.gpu_seconds


def gpu_time_text(run) -> str:
    """The run's GPU time, or that it had no GPU (the CPU demo)."""
    return CPU_ONLY if _on_cpu(run) else gpu_time(run.gpu_seconds)


def energy_text(run) -> str:
    """The run's energy as "0.42 Wh" or "1.25 kWh", with the cost when the lab set a price."""
    if _on_cpu(run):
        return CPU_ONLY
    wh = run.energy_wh or 0.0
    text = f"{wh / 1000:.2f} kWh" if wh >= 1000 else f"{wh:.2f} Wh"
    price = energy.cost(wh)
    if price is not None:
        text += f" ({price:.2f} {settings.LORASTUDIO_COST_CURRENCY})"
    return text


def facts(run) -> list[tuple[str, str]]:
    """What a run trained from and with: inputs, machine, software, outcome (name, value)."""
    record = provenance_of(run)
    rows = [
        ("Base model", f"{run.base_model.name} ({run.base_model.get_architecture_display()})"),
        ("Dataset", run.dataset.name if run.dataset else "(deleted)"),
        ("Preset", run.preset.name if run.preset else "—"),
        ("Extra flags", _text(run.extra_flags)),
        ("Sample prompts", _text(run.sample_prompts)),
    ]
    if record is not None:
        packages = record.packages or {}
        rows += [
            ("Dataset SHA-256 (as trained)", record.dataset_sha256),
            ("Images as trained", str(len(record.files))),
            ("Base model SHA-256", record.base_model_sha256),
            ("Node", record.node_name or "—"),
            ("GPU", " · ".join(x for x in (record.gpu_name, record.driver) if x) or "—"),
            ("Trainer (sd-scripts)", record.sdscripts_version or "—"),
        ]
        if "error" in packages:
            rows.append(("Trainer packages", packages["error"]))
        else:
            rows += [(f"Package {name}", _text(v)) for name, v in sorted(packages.items())]
        rows.append(("LoRA Studio", record.lorastudio_version or "—"))
    else:
        rows.append(("Provenance", "none recorded (the run never started, or predates it)"))
    rows += [
        ("Status", run.get_status_display()),
        ("Final LoRA as the trainer wrote it (SHA-256)", final_trainer_sha256(run) or "—"),
        ("GPU time", gpu_time_text(run)),
        ("Energy", energy_text(run)),
    ]
    return rows


def _files(run) -> tuple[list[dict], str]:
    """The run's training images with captions: as trained (provenance), else its dataset
    now (with a note saying so)."""
    record = provenance_of(run)
    if record is not None:
        return record.files, ""
    if run.dataset is None:
        return [], "its dataset was deleted"
    return [e.record() for e in dataset_entries(run.dataset)], "its dataset now (no provenance)"


@dataclass
class Comparison:
    a: object
    b: object
    params: list[Row] = field(default_factory=list)
    facts: list[Row] = field(default_factory=list)
    added: list[dict] = field(default_factory=list)
    removed: list[dict] = field(default_factory=list)
    captions: list[dict] = field(default_factory=list)
    dataset_notes: list[str] = field(default_factory=list)
    chart: object = None
    samples: list[tuple[str, object, object]] = field(default_factory=list)

    @property
    def same_dataset(self) -> bool:
        return not (self.added or self.removed or self.captions)


def _sample_key(sample) -> tuple:
    return (sample.epoch or 0, sample.step or 0, sample.index)


def _sample_label(key: tuple) -> str:
    epoch, step, index = key
    where = f"epoch {epoch}" if epoch else (f"step {step}" if step else "end")
    return f"{where}, prompt {index + 1}"


def compare(a, b) -> Comparison:
    """Two runs side by side."""
    result = Comparison(a, b)
    keys = sorted(set(a.params) | set(b.params))
    result.params = [Row(k, _text(a.params.get(k)), _text(b.params.get(k))) for k in keys]
    b_facts = dict(facts(b))
    a_facts = dict(facts(a))
    names = list(a_facts) + [n for n in b_facts if n not in a_facts]
    result.facts = [Row(n, a_facts.get(n, "—"), b_facts.get(n, "—")) for n in names]
    (a_files, a_note), (b_files, b_note) = _files(a), _files(b)
    diff = difference(a_files, b_files)
    result.added, result.removed, result.captions = diff.added, diff.removed, diff.captions
    for run, note in ((a, a_note), (b, b_note)):
        if note:
            result.dataset_notes.append(f"Run #{run.pk}: {note}.")
    result.chart = loss_chart([a, b])
    by_key = {}
    for side, run in (("a", a), ("b", b)):
        for sample in run.samples.all():
            by_key.setdefault(_sample_key(sample), {})[side] = sample
    result.samples = [(_sample_label(k), v.get("a"), v.get("b")) for k, v in sorted(by_key.items())]
    return result


def contact_thumbnail(image) -> bytes | None:
    """A small JPEG of a dataset image's thumbnail for the contact sheet (None: unreadable)."""
    if not image.thumbnail:
        return None
    try:
        with image.thumbnail.open("rb") as fh, Image.open(fh) as picture:
            picture = picture.convert("RGB")
            picture.thumbnail((CONTACT_THUMB_PX, CONTACT_THUMB_PX))
            out = io.BytesIO()
            picture.save(out, "JPEG", quality=75)
            return out.getvalue()
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def contact_sheet(run, files: list[dict]) -> list[dict]:
    """The images as trained, each with its caption and a small picture when its dataset
    still holds that image (matched by content)."""
    images = {}
    if run.dataset is not None:
        images = {i.sha256: i for i in run.dataset.images.only("sha256", "thumbnail")}
    sheet = []
    for f in files[:CONTACT_SHEET_MAX]:
        picture = contact_thumbnail(images[f["sha256"]]) if f["sha256"] in images else None
        uri = "data:image/jpeg;base64," + base64.b64encode(picture).decode() if picture else ""
        sheet.append({**f, "jpeg": picture, "data_uri": uri})
    return sheet


def report(run) -> dict:
    """Everything the report page and its PDF show about `run`."""
    record = provenance_of(run)
    files, files_note = _files(run)
    train = record.subset("train") if record is not None else None
    dataset = run.dataset
    summary = {
        "name": (train or {}).get("dataset_name") or (dataset.name if dataset else "(deleted)"),
        "images": len(files),
        "repeats": (train or {}).get("repeats", dataset.repeats if dataset else "—"),
        "trigger": (train or {}).get("class_tokens", dataset.trigger_word if dataset else ""),
        "sha256": record.dataset_sha256 if record is not None else "",
        "captioned": sum(1 for f in files if f["caption"]),
        "note": files_note,
    }
    return {
        "run": run,
        "provenance": record,
        "dataset": summary,
        "contact_sheet": contact_sheet(run, files),
        "contact_sheet_more": max(0, len(files) - CONTACT_SHEET_MAX),
        "params": sorted(run.params.items()),
        "facts": facts(run),
        "chart": loss_chart([run]),
        "samples": list(run.samples.all()),
        "evaluation": None,  # the ComfyUI evaluation grid (a later issue) goes here
        "gpu_time": gpu_time_text(run),
        "energy": energy_text(run),
        "argv_text": command_text(record.argv) if record is not None else "",
        "artifacts": list(run.artifacts.all()),
        "model_files": list(record.base_model.get("files", []) if record else []),
        "files": files,
    }
