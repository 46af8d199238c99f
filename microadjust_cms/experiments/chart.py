"""A small line chart as inline SVG, drawn on the server: the report needs no script and no CDN."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

#: Colour-blind-safe (Okabe-Ito), one per arm in order; the control is the first.
COLOURS = ("#000000", "#E69F00", "#0072B2", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442")
WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 120, 16, 32


def _format(value: float, percent: bool) -> str:
    return f"{value * 100:.1f}%" if percent else f"{value:.3g}"


def line_chart(series: dict[str, Sequence[tuple[datetime.date, float]]], *, percent: bool,
               title: str) -> SafeString:
    """One line per series (name → (day, value) points in day order). Empty: a note, no chart."""
    points = [(day, value) for values in series.values() for day, value in values]
    if not points:
        return mark_safe('<p class="help-block">No exposures yet: the chart appears with the first visitors.</p>')
    days = sorted({day for day, _ in points})
    top = max(value for _, value in points) or 1.0
    top *= 1.1
    span_x = WIDTH - LEFT - RIGHT
    span_y = HEIGHT - TOP - BOTTOM

    first, length = days[0], (days[-1] - days[0]).days

    def x(day: datetime.date) -> float:  # by date: a day without exposures is a gap, not squeezed out
        return LEFT + (span_x * (day - first).days / length if length else span_x / 2)

    def y(value: float) -> float:
        return TOP + span_y * (1 - value / top)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(title)}" style="max-width:100%;height:auto" class="ma-chart">',
             f"<title>{escape(title)}</title>",
             f'<line x1="{LEFT}" y1="{TOP + span_y}" x2="{LEFT + span_x}" y2="{TOP + span_y}" stroke="#999"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + span_y}" stroke="#999"/>']
    for fraction in (0, 0.5, 1):
        value = top * fraction
        parts.append(f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="currentColor">{_format(value, percent)}</text>')
    for day in (days[0], days[-1]) if len(days) > 1 else days:
        parts.append(f'<text x="{x(day):.1f}" y="{HEIGHT - 10}" text-anchor="middle" font-size="11" '
                     f'fill="currentColor">{day.isoformat()}</text>')
    for index, (name, values) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        coords = " ".join(f"{x(day):.1f},{y(value):.1f}" for day, value in values)
        if len(values) > 1:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>')
        for day, value in values:
            parts.append(f'<circle cx="{x(day):.1f}" cy="{y(value):.1f}" r="3" fill="{colour}">'
                         f"<title>{escape(name)} {day.isoformat()}: {_format(value, percent)}</title></circle>")
        parts.append(f'<text x="{LEFT + span_x + 10}" y="{TOP + 14 + 16 * index}" font-size="12" '
                     f'fill="{colour}">■ {escape(name)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))
