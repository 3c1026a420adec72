"""An evaluation as a grid: one block per prompt and seed, a row per checkpoint (epoch), a
column per strength, the base model (strength 0) once per block. The run page renders
`layout`; `compose_png` draws the same grid as one downloadable picture.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

from training.models import Evaluation, EvaluationImage
from training.models.evaluation import BASE_EPOCH, cell_key, strength_text

MAX_GRID_PIXELS = 40_000_000  # the downloadable picture; thumbnails shrink to stay below
LABEL_W, LABEL_H, PAD = 120, 28, 4


@dataclass
class GridCell:
    key: str
    strength: float
    image: EvaluationImage | None = None

    @property
    def label(self) -> str:
        return "base" if self.strength == 0 else strength_text(self.strength)


@dataclass
class GridRow:
    epoch: int
    final: bool
    artifact_id: int
    cells: list[GridCell] = field(default_factory=list)


@dataclass
class GridBlock:
    prompt_index: int
    prompt: str
    seed: int
    base: GridCell | None
    rows: list[GridRow] = field(default_factory=list)


def columns(evaluation: Evaluation) -> list[str]:
    """Column labels: "base" (strength 0), then the LoRA strengths."""
    labels = ["base"] if 0 in evaluation.strengths else []
    return labels + [strength_text(s) for s in evaluation.strengths if s != 0]


def layout(evaluation: Evaluation, images=None) -> list[GridBlock]:
    """The grid's blocks with the images stored so far (empty cells fill in live)."""
    stored = {i.cell: i for i in (evaluation.images.all() if images is None else images)}
    blocks = []
    lora_strengths = [s for s in evaluation.strengths if s != 0]
    for index, prompt in enumerate(evaluation.prompts):
        for seed in evaluation.seeds:
            base = None
            if 0 in evaluation.strengths:
                key = cell_key(BASE_EPOCH, 0.0, seed, index)
                base = GridCell(key, 0.0, stored.get(key))
            block = GridBlock(index, prompt, seed, base)
            for checkpoint in evaluation.checkpoints:
                row = GridRow(checkpoint["epoch"], checkpoint["final"], checkpoint["artifact"])
                for strength in lora_strengths:
                    key = cell_key(checkpoint["epoch"], strength, seed, index)
                    row.cells.append(GridCell(key, strength, stored.get(key)))
                block.rows.append(row)
            blocks.append(block)
    return blocks


def _thumb(image: EvaluationImage | None, size: int) -> Image.Image:
    tile = Image.new("RGB", (size, size), (238, 240, 243))
    if image is None:
        return tile
    try:
        with image.file.open("rb") as fh, Image.open(fh) as picture:
            picture = picture.convert("RGB")
            picture.thumbnail((size, size))
            tile.paste(picture, ((size - picture.width) // 2, (size - picture.height) // 2))
    except (OSError, ValueError):
        pass  # a missing file stays an empty tile
    return tile


def compose_png(evaluation: Evaluation) -> bytes:
    """The whole grid as one PNG: per block a title line, a header row of strengths and a
    row per epoch; the base picture sits in the first column of every row."""
    blocks = layout(evaluation)
    heads = columns(evaluation)
    size = max(evaluation.settings.get("width", 512), 64)
    rows_total = sum(len(b.rows) for b in blocks) or 1
    while size > 32:
        width = LABEL_W + len(heads) * (size + PAD)
        height = len(blocks) * 2 * LABEL_H + rows_total * (size + PAD)
        if width * height <= MAX_GRID_PIXELS:
            break
        size = int(size * 0.8)
    canvas = Image.new("RGB", (width, max(height, LABEL_H)), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    y = 0
    for block in blocks:
        title = f"prompt {block.prompt_index + 1}, seed {block.seed}: {block.prompt}"
        draw.text((PAD, y + 8), title[:160], fill="black", font=font)
        y += LABEL_H
        for i, head in enumerate(heads):
            draw.text((LABEL_W + i * (size + PAD) + PAD, y + 8), head, fill="black", font=font)
        y += LABEL_H
        for row in block.rows:
            label = f"epoch {row.epoch}" + (" (final)" if row.final else "")
            draw.text((PAD, y + size // 2), label, fill="black", font=font)
            tiles = ([block.base] if block.base is not None else []) + row.cells
            for i, cell in enumerate(tiles):
                canvas.paste(_thumb(cell.image, size), (LABEL_W + i * (size + PAD), y))
            y += size + PAD
    out = io.BytesIO()
    canvas.save(out, format="PNG", optimize=False)
    return out.getvalue()
