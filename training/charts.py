"""Loss curves drawn on the server: one or more runs' `loss_points` on shared axes.

The compare page and the report draw them as SVG, the PDF with reportlab, from the same
scaled points (the run page's live chart scales the same way in run_live.js).
"""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT, PAD = 600, 200, 8


@dataclass(frozen=True)
class Curve:
    """One run's loss curve in chart coordinates (x right, y down, WIDTH × HEIGHT)."""

    label: str
    css: str  # "a" or "b": the colour the page gives it
    coords: list[tuple[float, float]]

    @property
    def points(self) -> str:
        """SVG polyline points ("x,y x,y …")."""
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in self.coords)


@dataclass(frozen=True)
class Chart:
    curves: list[Curve]
    steps: tuple[int, int]
    losses: tuple[float, float]

    @property
    def empty(self) -> bool:
        return not any(c.coords for c in self.curves)

    @property
    def caption(self) -> str:
        if self.empty:
            return "No loss recorded yet."
        (x0, x1), (y0, y1) = self.steps, self.losses
        return f"loss {y0:.4f} – {y1:.4f} over steps {x0}–{x1}"


def _points(run) -> list[tuple[int, float]]:
    return [(int(step), float(loss)) for step, loss in (run.loss_points or [])]


def loss_chart(runs, width: int = WIDTH, height: int = HEIGHT) -> Chart:
    """The runs' loss curves scaled to one box (the first run "a", the second "b")."""
    series = [(run, _points(run)) for run in runs]
    every = [p for _, points in series for p in points]
    if not every:
        return Chart([Curve(f"#{r.pk}", "ab"[i % 2], []) for i, (r, _) in enumerate(series)],
                     (0, 0), (0.0, 0.0))  # fmt: skip
    x0, x1 = min(p[0] for p in every), max(p[0] for p in every)
    y0, y1 = min(p[1] for p in every), max(p[1] for p in every)

    def scale(step: int, loss: float) -> tuple[float, float]:
        x = PAD + (width - 2 * PAD) * (step - x0) / (x1 - x0) if x1 > x0 else width / 2
        y = height - PAD - (height - 2 * PAD) * (loss - y0) / (y1 - y0) if y1 > y0 else height / 2
        return x, y

    curves = [
        Curve(f"#{run.pk}" + (f" {run.name}" if run.name else ""), "ab"[i % 2],
              [scale(s, v) for s, v in points])
        for i, (run, points) in enumerate(series)
    ]  # fmt: skip
    return Chart(curves, (x0, x1), (y0, y1))


@dataclass(frozen=True)
class Bar:
    """One bar of a bar chart, in chart coordinates (x right, y down)."""

    label: str
    value: float
    x: float
    y: float
    width: float
    height: float

    @property
    def center(self) -> float:
        return self.x + self.width / 2


def bars(values: list[tuple[str, float]], width: int = WIDTH, height: int = 160) -> list[Bar]:
    """Labelled values as bars side by side, the largest `height` - 2·PAD tall (the admin's
    GPU-hours per week)."""
    if not values:
        return []
    top = max(v for _, v in values) or 1.0
    slot = (width - 2 * PAD) / len(values)
    result = []
    for i, (label, value) in enumerate(values):
        h = (height - 2 * PAD) * value / top
        x = PAD + i * slot + slot * 0.15
        result.append(Bar(label, value, x, height - PAD - h, slot * 0.7, h))
    return result
