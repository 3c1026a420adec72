"""The run report as a PDF, built with reportlab from the same data as the report page.

reportlab is pure Python (no system libraries): it lays out the sections of
`training.reports.report(run)` in the page's order. The loss curve is drawn as vectors in a
form named "LossCurve", so the PDF keeps it sharp at any zoom (and a test can find it).
Text uses the PDF's standard fonts: characters outside Latin-1 show as blanks.
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import (
    Flowable,
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from training.charts import HEIGHT, WIDTH

CURVE_COLOURS = {"a": colors.HexColor("#1c7ed6"), "b": colors.HexColor("#e8590c")}
SAMPLES_PER_ROW, SAMPLE_CM = 4, 3.9
THUMBS_PER_ROW, THUMB_CM = 8, 1.95
MAX_SAMPLES = 40

_styles = getSampleStyleSheet()
BODY = ParagraphStyle("body", parent=_styles["BodyText"], fontSize=9, leading=11.5)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=7, leading=8.5)
MONO = ParagraphStyle("mono", parent=SMALL, fontName="Courier", fontSize=6.5, leading=8)
H1 = ParagraphStyle("h1", parent=_styles["Heading1"], fontSize=16, spaceAfter=4)
H2 = ParagraphStyle("h2", parent=_styles["Heading2"], fontSize=12, spaceBefore=10, spaceAfter=4)
GRID = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#ced4da")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f1f3f5")),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
)


def _p(text, style=BODY) -> Paragraph:
    return Paragraph(escape(str(text)).replace("\n", "<br/>"), style)


class LossCurve(Flowable):
    """The chart's curves, scaled from its WIDTH × HEIGHT box to the page."""

    def __init__(self, chart, width: float, height: float):
        super().__init__()
        self.chart, self.width, self.height = chart, width, height

    def wrap(self, available_width, available_height):
        return self.width, self.height

    def draw(self):
        canvas, w, h = self.canv, self.width, self.height
        canvas.beginForm("LossCurve")
        canvas.setStrokeColor(colors.HexColor("#ced4da"))
        canvas.setFillColor(colors.HexColor("#fafbfc"))
        canvas.rect(0, 0, w, h, stroke=1, fill=1)
        sx, sy = w / WIDTH, h / HEIGHT
        for curve in self.chart.curves:
            coords = [(x * sx, h - y * sy) for x, y in curve.coords]
            canvas.setStrokeColor(CURVE_COLOURS[curve.css])
            canvas.setLineWidth(1.2)
            if len(coords) == 1:
                canvas.circle(*coords[0], 1.5, stroke=1, fill=0)
                continue
            path = canvas.beginPath()
            if coords:
                path.moveTo(*coords[0])
                for point in coords[1:]:
                    path.lineTo(*point)
            canvas.drawPath(path, stroke=1, fill=0)
        canvas.endForm()
        canvas.doForm("LossCurve")


def _table(rows, widths, style=BODY) -> Table:
    """Label | value rows; the values in `style` (MONO for hashes)."""
    cells = [[_p(row[0], SMALL), *(_p(value, style) for value in row[1:])] for row in rows]
    table = Table(cells, colWidths=widths)
    table.setStyle(GRID)
    return table


def _picture(data: bytes, size_cm: float) -> Image:
    return Image(io.BytesIO(data), width=size_cm * cm, height=size_cm * cm, kind="proportional")


def _grid(cells: list, per_row: int, cell_cm: float) -> Table:
    rows = [cells[i : i + per_row] for i in range(0, len(cells), per_row)]
    rows[-1] += [""] * (per_row - len(rows[-1]))
    table = Table(rows, colWidths=[cell_cm * cm] * per_row)
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return table


def _read(field) -> bytes | None:
    try:
        with field.open("rb") as fh:
            return fh.read()
    except (OSError, ValueError):
        return None


def _story(data: dict) -> list:
    run, dataset = data["run"], data["dataset"]
    title = f"Run #{run.pk}" + (f" {run.name}" if run.name else "")
    when = run.finished_at or run.started_at or run.created_at
    story = [
        Paragraph(escape(f"LoRA Studio run report: {title}"), H1),
        _p(
            f"{run.owner.get_username()} · {run.base_model.name} · {run.get_status_display()}"
            f" · {timezone.localtime(when):%Y-%m-%d %H:%M}",
            SMALL,
        ),
        Paragraph("Purpose", H2),
        _p(run.purpose or "(not given)"),
        Paragraph("Dataset", H2),
        _table(
            [
                ["Name", dataset["name"]],
                ["Images", f"{dataset['images']} ({dataset['captioned']} with a caption)"],
                ["Repeats · trigger word", f"{dataset['repeats']} · {dataset['trigger'] or '—'}"],
                ["SHA-256 as trained", dataset["sha256"] or dataset["note"] or "—"],
            ],
            [4.5 * cm, 12.5 * cm],
        ),
        Spacer(1, 4),
    ]
    thumbs = []
    for item in data["contact_sheet"]:
        cell = [_picture(item["jpeg"], THUMB_CM - 0.15)] if item["jpeg"] else [_p("(gone)", SMALL)]
        cell.append(_p((item["caption"] or "—")[:60], SMALL))
        thumbs.append(cell)
    if thumbs:
        story.append(_grid(thumbs, THUMBS_PER_ROW, THUMB_CM + 0.15))
    if data["contact_sheet_more"]:
        story.append(_p(f"… and {data['contact_sheet_more']} more images.", SMALL))
    story += [
        Paragraph("Parameters", H2),
        _table([[k, v] for k, v in data["params"]], [6 * cm, 11 * cm]),
        Paragraph("Provenance", H2),
        _table([list(row) for row in data["facts"]], [6 * cm, 11 * cm], MONO),
    ]
    if data["argv_text"]:
        story += [Paragraph("Exact command", H2), _p(data["argv_text"], MONO)]
    story += [
        KeepTogether(
            [
                Paragraph("Loss curve", H2),
                LossCurve(data["chart"], 17 * cm, 5.7 * cm),
                _p(f"Loss by step: {data['chart'].caption}", SMALL),
            ]
        ),
        Paragraph("Samples", H2),
    ]
    cells = []
    for sample in data["samples"][:MAX_SAMPLES]:
        picture = _read(sample.file)
        label = (f"epoch {sample.epoch} · " if sample.epoch is not None else "") + sample.prompt
        cells.append(
            [_picture(picture, SAMPLE_CM - 0.2) if picture else _p("(file gone)", SMALL),
             _p(label[:90], SMALL)]
        )  # fmt: skip
    story.append(_grid(cells, SAMPLES_PER_ROW, SAMPLE_CM + 0.3) if cells else _p("No samples."))
    story += [
        Paragraph("Evaluation grid", H2),
        _p("No evaluation grid yet (LoRA Studio does not run evaluations yet)."),
        Paragraph("GPU time and energy", H2),
        _table([["GPU time", data["gpu_time"]], ["Energy", data["energy"]]], [6 * cm, 11 * cm]),
        Paragraph("Files and their SHA-256", H2),
    ]
    rows = [["LoRA file", "SHA-256 (as stored) · as the trainer wrote it"]]
    for artifact in data["artifacts"]:
        rows.append([str(artifact), f"{artifact.sha256}\n{artifact.trainer_sha256 or '—'}"])
    for f in data["model_files"]:
        rows.append([f"model {f['role']}: {f['path']}", f["sha256"]])
    for f in data["files"]:
        rows.append([f"image {f.get('original_name') or f['name']}", f["sha256"]])
    story.append(_table(rows, [6 * cm, 11 * cm], MONO))
    return story


def report_pdf(data: dict) -> bytes:
    """The report as PDF bytes."""
    run = data["run"]
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=2 * cm,
        rightMargin=2 * cm,
        topMargin=1.6 * cm,
        bottomMargin=1.6 * cm,
        title=f"LoRA Studio run #{run.pk} report",
        author=run.owner.get_username(),
        subject=run.name or f"Run #{run.pk}",
        creator="LoRA Studio",
    )

    def footer(canvas, document):
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.setFillColor(colors.grey)
        canvas.drawString(2 * cm, 1 * cm, f"LoRA Studio · run #{run.pk} report")
        canvas.drawRightString(A4[0] - 2 * cm, 1 * cm, f"page {document.page}")
        canvas.restoreState()

    doc.build(_story(data), onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()
