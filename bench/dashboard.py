"""Draw the Grafana dashboard's panels (deploy/grafana/fool-the-model.json) from a Prometheus.

Grafana cannot be installed on the machine this was built on, so the README's picture of the
dashboard is drawn by this script instead: every panel of the dashboard JSON, in its grid
position, with its title, and each of its queries evaluated as written by a real Prometheus
(its HTTP API, `query_range`) that scraped real servers. Lines, stats and tables only: it is a
faithful rendering of the data, not of Grafana's looks.

    .venv/bin/python bench/dashboard.py --prometheus http://127.0.0.1:9090 --minutes 15 \\
        --out docs/images/dashboard.png
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parent.parent
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
COLUMN, ROW_HEIGHT, MARGIN = 64, 34, 6  # pixels per grid column and grid row; panel gap
BACKGROUND, PANEL, GRID, TEXT, DIM = "#111217", "#181b1f", "#2a2d33", "#d8d9da", "#8e9099"
COLORS = ["#73bf69", "#f2cc0c", "#5794f2", "#ff9830", "#f2495c", "#b877d9", "#8ab8ff", "#ffb357"]


@dataclass
class Series:
    legend: str
    points: list[tuple[float, float]]  # (unix time, value)


def query_range(prometheus: str, expr: str, start: float, end: float, step: float) -> list[Any]:
    reply = httpx.get(
        f"{prometheus}/api/v1/query_range",
        params={"query": expr, "start": start, "end": end, "step": step},
        timeout=30,
    )
    reply.raise_for_status()
    result: list[Any] = reply.json()["data"]["result"]
    return result


def legend(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template).strip()


def panel_series(
    prometheus: str, panel: dict[str, Any], start: float, end: float, step: float
) -> list[Series]:
    """Each query of `panel` over the time range; for a stat or a table, at its end only."""
    if panel["type"] in ("stat", "table"):
        start = end
    found = []
    for target in panel.get("targets", ()):
        for result in query_range(prometheus, target["expr"], start, end, step):
            points = [(float(t), float(v)) for t, v in result["values"] if v not in ("NaN",)]
            name = legend(target.get("legendFormat", ""), result["metric"]) or target["expr"]
            found.append(Series(name, points))
    return found


def formatted(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1000:.3g} ms" if value < 1 else f"{value:.3g} s"
    if unit == "bytes":
        return f"{value / 2**20:.0f} MiB"
    if unit == "percentunit":
        return f"{value * 100:.0f}%"
    if unit == "reqps":
        return f"{value:.3g}/s"
    return f"{value:.4g}" if value % 1 else f"{value:.0f}"


class Canvas:
    def __init__(self, dashboard: dict[str, Any], title: str) -> None:
        rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dashboard["panels"])
        self.top = 56
        self.image = Image.new("RGB", (24 * COLUMN, self.top + rows * ROW_HEIGHT), BACKGROUND)
        self.draw = ImageDraw.Draw(self.image)
        self.text(16, 14, title, 20)

    def font(self, size: int) -> ImageFont.FreeTypeFont:
        return ImageFont.truetype(FONT, size)

    def text(self, x: float, y: float, text: str, size: int = 13, fill: str = TEXT) -> None:
        self.draw.text((x, y), text, fill=fill, font=self.font(size))

    def box(self, panel: dict[str, Any]) -> tuple[int, int, int, int]:
        grid = panel["gridPos"]
        x, y = grid["x"] * COLUMN + MARGIN, self.top + grid["y"] * ROW_HEIGHT + MARGIN
        return x, y, x + grid["w"] * COLUMN - 2 * MARGIN, y + grid["h"] * ROW_HEIGHT - 2 * MARGIN

    def row(self, panel: dict[str, Any]) -> None:
        x, y, _, _ = self.box(panel)
        self.text(x + 4, y + 2, panel["title"], 16)

    def panel(self, panel: dict[str, Any], series: list[Series]) -> None:
        x0, y0, x1, y1 = self.box(panel)
        self.draw.rectangle((x0, y0, x1, y1), fill=PANEL, outline=GRID)
        self.text(x0 + 10, y0 + 8, panel["title"], 14)
        unit = panel["fieldConfig"]["defaults"].get("unit", "short")
        inner = (x0 + 10, y0 + 34, x1 - 10, y1 - 10)
        if not series:
            self.text(inner[0], inner[1], "No data", 14, DIM)
        elif panel["type"] == "stat":
            last = series[0].points[-1][1] if series[0].points else float("nan")
            self.text(inner[0] + 6, inner[1] + 10, formatted(last, unit), 40, COLORS[0])
        elif panel["type"] == "table":
            for i, one in enumerate(series):
                self.text(inner[0], inner[1] + 20 * i, one.legend, 13)
        else:
            self.lines(inner, series, unit)

    def lines(self, box: tuple[int, int, int, int], series: list[Series], unit: str) -> None:
        x0, y0, x1, y1 = box
        legend_rows = (len(series) + 2) // 3
        y1 -= 18 * legend_rows
        points = [p for s in series for p in s.points]
        if not points:
            self.text(x0, y0, "No data", 14, DIM)
            return
        t0, t1 = min(t for t, _ in points), max(t for t, _ in points)
        top = max(v for _, v in points)
        bottom = min(0.0, min(v for _, v in points))
        top = top if top > bottom else bottom + 1
        left = x0 + 62
        for fraction in (0.0, 0.5, 1.0):
            y = y1 - fraction * (y1 - y0)
            self.draw.line((left, y, x1, y), fill=GRID)
            self.text(x0, y - 8, formatted(bottom + fraction * (top - bottom), unit), 11, DIM)
        for i, one in enumerate(series):
            color = COLORS[i % len(COLORS)]
            xy = [
                (
                    left + (t - t0) / max(t1 - t0, 1) * (x1 - left),
                    y1 - (v - bottom) / (top - bottom) * (y1 - y0),
                )
                for t, v in one.points
            ]
            if len(xy) > 1:
                self.draw.line(xy, fill=color, width=2)
            elif xy:
                self.draw.ellipse((xy[0][0] - 2, xy[0][1] - 2, xy[0][0] + 2, xy[0][1] + 2), color)
            column, line = i % 3, i // 3
            lx, ly = x0 + column * (x1 - x0) / 3, y1 + 6 + 18 * line
            self.draw.rectangle((lx, ly + 5, lx + 12, ly + 8), fill=color)
            self.text(lx + 16, ly, one.legend[:38], 11, DIM)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument(
        "--dashboard", type=Path, default=REPO / "deploy" / "grafana" / "fool-the-model.json"
    )
    parser.add_argument("--minutes", type=float, default=15.0, help="the time range, to now")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images" / "dashboard.png")
    args = parser.parse_args()

    dashboard = json.loads(args.dashboard.read_text())
    end = time.time()
    start = end - args.minutes * 60
    step = max(args.minutes * 60 / 300, 1.0)
    canvas = Canvas(
        dashboard,
        f"{dashboard['title']} — the dashboard's panels and queries, drawn from Prometheus "
        f"(last {args.minutes:g} min; not a Grafana screenshot)",
    )
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            canvas.row(panel)
        else:
            canvas.panel(panel, panel_series(args.prometheus, panel, start, end, step))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    canvas.image.save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
