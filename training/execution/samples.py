"""Sample images a trainer writes under `output_dir/sample/`: recorded once each, while it runs.

sd-scripts (and the demo trainer) write a sample PNG in place with Pillow, so a file in the
folder may still be growing. A PNG counts as complete once Pillow can verify it: its last
chunk, IEND, is written last. Each complete file becomes one `SampleImage` and a
`run.sample` message to the run's group, so the run page shows it as it appears; the
runner's final collection goes through the same collector and adds only what is new.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from training import live
from training.execution.files import store_file
from training.models import SampleImage

logger = logging.getLogger(__name__)

SCAN_S = 1.0

# sd-scripts names: {output_name}_e{epoch:06d}_{index:02d}_{stamp}.png or _{step:06d}_…
_SAMPLE_EPOCH = re.compile(r"_e(\d{6})_(\d{2})_")
_SAMPLE_STEP = re.compile(r"_(\d{6})_(\d{2})_")


def sample_position(name: str) -> tuple[int | None, int | None, int]:
    """(epoch, step, prompt index) encoded in an sd-scripts sample file name."""
    if m := _SAMPLE_EPOCH.search(name):
        return int(m[1]), None, int(m[2])
    if m := _SAMPLE_STEP.search(name):
        return None, int(m[1]), int(m[2])
    return None, None, 0


def is_complete_png(path: Path) -> bool:
    """Whether `path` is a whole PNG (Pillow reads every chunk up to IEND and checks CRCs)."""
    try:
        with Image.open(path) as image:
            if image.format != "PNG":
                return False
            image.verify()
    except Exception:  # truncated or still being written: Pillow raises several kinds
        return False
    return True


class SampleCollector:
    """Records the PNGs of one run's sample folder, each once, and announces each."""

    def __init__(
        self,
        run_id: int,
        sample_dir: Path,
        *,
        prompts: Sequence[str],
    ):
        self.run_id = run_id
        self.sample_dir = Path(sample_dir)
        self.prompts = list(prompts)
        self.done: set[str] = set()
        self.last_scan = 0.0

    def due(self) -> bool:
        return time.monotonic() - self.last_scan >= SCAN_S

    def scan(self, *, final: bool = False) -> list[SampleImage]:
        """Record the new complete PNGs; `final` (the trainer has exited) records every one."""
        self.last_scan = time.monotonic()
        if not self.sample_dir.is_dir():
            return []
        added = []
        for path in sorted(self.sample_dir.glob("*.png")):
            if path.name in self.done:
                continue
            if not final and not is_complete_png(path):
                continue  # still being written: the next scan looks again
            try:
                sample, created = self._record(path)
            except OSError:
                logger.exception("Could not store sample %s of run %s", path, self.run_id)
                continue
            self.done.add(path.name)
            if created:
                added.append(sample)
                live.send_sample(sample)
        return added

    def _record(self, path: Path) -> tuple[SampleImage, bool]:
        epoch, step, index = sample_position(path.name)
        return SampleImage.objects.get_or_create(
            run_id=self.run_id,
            file=store_file(self.run_id, path),
            defaults={
                "epoch": epoch,
                "step": step,
                "index": index,
                "prompt": self.prompts[index] if index < len(self.prompts) else "",
            },
        )
