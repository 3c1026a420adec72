"""The lab week's GPU occupancy as a PNG, drawn with Pillow (bench/lab_week.py --plot).

One panel per policy: a lane per GPU with a bar per run, coloured by architecture (a run that
ran out of memory is red), and under the lanes the number of runs waiting.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

COLOURS = {
    "sd15": (120, 170, 230),
    "sdxl": (70, 120, 200),
    "sd35_medium": (140, 200, 140),
    "sd35_large": (60, 150, 80),
    "flux1_dev": (230, 160, 60),
}
OOM = (215, 40, 40)
WIDTH, LEFT, RIGHT = 1600, 150, 20
LANE, GAP, QUEUE_H, TITLE_H = 22, 4, 60, 26
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def draw(weeks, gpus, path: Path) -> None:
    """Write the occupancy of `weeks` (bench.lab_week.Week) on `gpus` (its GPUS) to `path`."""
    font = ImageFont.load_default()
    hours = max([24 * 7] + [o.ended_h or 0 for w in weeks for o in w.outcomes])
    hours = 24 * int(hours // 24 + 1)
    panel = TITLE_H + len(gpus) * (LANE + GAP) + QUEUE_H + 24
    legend = 30
    image = Image.new("RGB", (WIDTH, legend + panel * len(weeks)), "white")
    pen = ImageDraw.Draw(image)
    x_of = lambda h: LEFT + (WIDTH - LEFT - RIGHT) * h / hours  # noqa: E731
    x = LEFT
    for name, colour in [*COLOURS.items(), ("out of memory", OOM)]:
        pen.rectangle([x, 10, x + 14, 22], fill=colour)
        pen.text((x + 18, 10), name, fill="black", font=font)
        x += 30 + 7 * len(name)
    most_waiting = max([1] + [n for w in weeks for _, n in w.queue])
    for p, week in enumerate(weeks):
        top = legend + p * panel
        pen.text((10, top + 6), week.policy, fill="black", font=font)
        lanes_bottom = top + TITLE_H + len(gpus) * (LANE + GAP)
        for day in range(hours // 24 + 1):
            x = x_of(24 * day)
            pen.line([x, top + TITLE_H - 4, x, lanes_bottom + QUEUE_H], fill=(210, 210, 210))
            if day < hours // 24:
                pen.text((x + 4, top + 8), DAYS[day % 7], fill=(90, 90, 90), font=font)
        for g, (node, index, mib, model, _speed) in enumerate(gpus):
            y = top + TITLE_H + g * (LANE + GAP)
            pen.text((10, y + 5), f"{node} {index} {mib // 1024} GB", fill="black", font=font)
            pen.rectangle([LEFT, y, WIDTH - RIGHT, y + LANE], fill=(245, 245, 245))
            for o in sorted(week.outcomes, key=lambda o: o.oom):  # marks over bars
                if o.gpu != g or o.started_h is None:
                    continue
                colour = COLOURS.get(o.architecture, (150, 150, 150))
                x0 = x_of(o.started_h)
                if o.oom:  # a few minutes: a mark, not a bar
                    pen.rectangle([x0, y + 1, x0 + 2, y + LANE - 1], fill=OOM)
                    continue
                x1 = max(x_of(o.ended_h), x0 + 1)
                pen.rectangle([x0, y + 1, x1, y + LANE - 1], fill=colour, outline="white")
        base = lanes_bottom + QUEUE_H
        pen.text((10, base - 14), f"waiting (max {most_waiting})", fill="black", font=font)
        points = [(LEFT, base)]
        for (h0, n), (h1, _) in zip(week.queue, [*week.queue[1:], (hours, 0)], strict=True):
            y = base - (QUEUE_H - 6) * n / most_waiting
            points += [(x_of(h0), y), (x_of(h1), y)]
        points.append((x_of(hours), base))
        pen.polygon(points, fill=(190, 190, 190))
    image.save(path, format="PNG")
