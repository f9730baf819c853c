"""Small line charts drawn on the server as inline SVG: no script, no library, nothing the CSP has to allow (the
lines are styled by the page's stylesheet, so they follow the admin's light and dark themes)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT, TOP, BOTTOM = 240, 44, 4, 2
BUCKETS = 240  # at most one point per pixel column: a day of minute samples becomes six-minute maxima


def value_text(value: float | None, unit: str = "") -> str:
    """A value as the page shows it: 1.2 GiB, 3 min 20 s, 1,234."""
    if value is None:
        return "–"
    if unit == "bytes":
        size = float(value)
        for name in ("B", "KiB", "MiB", "GiB", "TiB"):
            if abs(size) < 1024 or name == "TiB":
                return f"{size:,.0f} {name}" if name == "B" else f"{size:,.1f} {name}"
            size /= 1024
    if unit == "seconds":
        seconds = float(value)
        if seconds < 1:
            return f"{seconds:.2f} s" if seconds else "0 s"
        if seconds < 120:
            return f"{seconds:.0f} s"
        if seconds < 7200:
            return f"{seconds // 60:.0f} min {seconds % 60:.0f} s"
        return f"{seconds / 3600:,.1f} h"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _bucketed(points: list[tuple[datetime, float]], start: datetime, end: datetime) -> list[tuple[int, float]]:
    """(bucket index, the bucket's largest value): a spike within a bucket still shows."""
    span = (end - start).total_seconds()
    buckets: dict[int, float] = {}
    for at, value in points:
        index = min(int((at - start).total_seconds() / span * BUCKETS), BUCKETS - 1)
        if index >= 0:
            buckets[index] = max(buckets.get(index, value), value)
    return sorted(buckets.items())


def sparkline(
    points: list[tuple[datetime, float]],
    *,
    start: datetime,
    end: datetime,
    gap: timedelta,
    label: str,
    unit: str = "",
) -> SafeString:
    """An SVG line of ``points`` from ``start`` to ``end`` on a scale from 0 to their largest value; the line
    breaks where no sample was taken for longer than ``gap`` (a worker down: no recording)."""
    bucketed = _bucketed(points, start, end)
    if not bucketed:
        return format_html(
            '<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{label}: no '
            'samples in the last 24 hours"><title>{label}: no samples in the last 24 hours</title>'
            '<line class="spark-base" x1="0" y1="{y}" x2="{w}" y2="{y}"></line>'
            '<text class="spark-empty" x="{cx}" y="{ty}" text-anchor="middle">no samples yet</text></svg>',
            w=WIDTH,
            h=HEIGHT,
            y=HEIGHT - BOTTOM,
            cx=WIDTH // 2,
            ty=HEIGHT // 2 + 4,
            label=label,
        )
    peak = max(value for _, value in bucketed)
    scale = peak if peak > 0 else 1.0
    column = WIDTH / BUCKETS
    gap_buckets = max(1, int(gap.total_seconds() / ((end - start).total_seconds() / BUCKETS)) + 1)

    def xy(index: int, value: float) -> str:
        x = index * column + column / 2
        y = HEIGHT - BOTTOM - (value / scale) * (HEIGHT - TOP - BOTTOM)
        return f"{x:.1f},{y:.1f}"

    runs: list[list[str]] = []
    previous = None
    for index, value in bucketed:
        if previous is None or index - previous > gap_buckets:
            runs.append([])
        runs[-1].append(xy(index, value))
        previous = index
    lines = format_html_join(
        "",
        '<polyline class="spark-line" points="{}"></polyline>',
        ((" ".join(run) if len(run) > 1 else f"{run[0]} {run[0]}",) for run in runs),
    )
    last_index, last_value = bucketed[-1]
    last_x, last_y = xy(last_index, last_value).split(",")
    summary = f"{label}: now {value_text(points[-1][1], unit)}, highest {value_text(peak, unit)} in the last 24 hours"
    return format_html(
        '<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{summary}">'
        "<title>{summary}</title>"
        '<line class="spark-base" x1="0" y1="{y}" x2="{w}" y2="{y}"></line>{lines}'
        '<circle class="spark-dot" cx="{lx}" cy="{ly}" r="2"></circle>'
        '<text class="spark-peak" x="2" y="10">{peak}</text></svg>',
        w=WIDTH,
        h=HEIGHT,
        y=HEIGHT - BOTTOM,
        lines=lines,
        lx=last_x,
        ly=last_y,
        summary=summary,
        peak=value_text(peak, unit),
    )
