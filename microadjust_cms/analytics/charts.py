"""Charts for the analytics reports as inline SVG drawn on the server (no script, no CDN). Each
has a ``<title>`` and an ``aria-label``; the templates put the same figures in a table beside it.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

#: Colour-blind-safe (Okabe-Ito).
BAR = "#0072B2"
DOT = "#D55E00"


def dropoff_chart(reached: dict[int, float], *, title: str) -> SafeString:
    """One bar per scroll milestone: the share of page views that got that far."""
    width, height, left, bottom, top = 480, 200, 44, 28, 10
    span = height - top - bottom
    step = (width - left - 10) / max(len(reached), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}" class="ma-chart" style="width:100%;max-width:560px;height:auto">',
             f"<title>{escape(title)}</title>",
             f'<line x1="{left}" y1="{top + span}" x2="{width - 10}" y2="{top + span}" stroke="#999"/>']
    for fraction in (0, 0.5, 1):
        y = top + span * (1 - fraction)
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="currentColor">{fraction:.0%}</text>')
    for i, (milestone, share) in enumerate(reached.items()):
        x = left + i * step + step * 0.15
        bar = span * max(0.0, min(share, 1.0))
        parts.append(f'<rect x="{x:.1f}" y="{top + span - bar:.1f}" width="{step * 0.7:.1f}" '
                     f'height="{bar:.1f}" fill="{BAR}"><title>{milestone}%: {share:.1%} of page views'
                     f"</title></rect>")
        parts.append(f'<text x="{x + step * 0.35:.1f}" y="{height - 10}" text-anchor="middle" '
                     f'font-size="11" fill="currentColor">{milestone}%</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (built from escaped text and numbers)


def interval_chart(rows: Sequence[tuple[str, float, float, float]], *, title: str) -> SafeString:
    """One line per (label, value, low, high): a dot at the value, a whisker over the interval,
    on a shared 0 to (largest high) axis, so variants compare at a glance."""
    if not rows:
        return mark_safe("")
    width, row_height, left, right = 480, 26, 120, 16
    height = row_height * len(rows) + 24
    top_value = max(high for _l, _v, _lo, high in rows) or 1.0
    span = width - left - right

    def x(value: float) -> float:
        return left + span * value / top_value

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}" class="ma-chart" style="width:100%;max-width:560px;height:auto">',
             f"<title>{escape(title)}</title>"]
    for i, (label, value, low, high) in enumerate(rows):
        y = 12 + i * row_height
        parts.append(f'<text x="{left - 8}" y="{y + 4}" text-anchor="end" font-size="12" '
                     f'fill="currentColor">{escape(label)}</text>')
        parts.append(f'<line x1="{x(low):.1f}" y1="{y}" x2="{x(high):.1f}" y2="{y}" stroke="{BAR}" '
                     'stroke-width="2"/>')
        parts.append(f'<circle cx="{x(value):.1f}" cy="{y}" r="4" fill="{DOT}"><title>{escape(label)}: '
                     f"{value:.1%} ({low:.1%} to {high:.1%})</title></circle>")
    axis_y = height - 8
    parts.append(f'<text x="{left}" y="{axis_y}" font-size="11" fill="currentColor">0%</text>')
    parts.append(f'<text x="{width - right}" y="{axis_y}" text-anchor="end" font-size="11" '
                 f'fill="currentColor">{top_value:.0%}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308


def hours_chart(hours: Sequence[tuple[str, int | None]], *, title: str) -> SafeString:
    """One bar per hour (label, count); an hour whose figures are hidden (None) is a gap."""
    width, height, left, bottom, top = 560, 180, 44, 28, 10
    span = height - top - bottom
    step = (width - left - 10) / max(len(hours), 1)
    peak = max((count or 0 for _label, count in hours), default=0) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}" class="ma-chart" style="width:100%;max-width:640px;height:auto">',
             f"<title>{escape(title)}</title>",
             f'<line x1="{left}" y1="{top + span}" x2="{width - 10}" y2="{top + span}" stroke="#999"/>',
             f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="11" fill="currentColor">{peak:,}</text>',
             f'<text x="{left - 6}" y="{top + span + 4}" text-anchor="end" font-size="11" fill="currentColor">0</text>']
    for i, (label, count) in enumerate(hours):
        x = left + i * step
        if count is not None:
            bar = span * count / peak
            parts.append(f'<rect x="{x + step * 0.1:.1f}" y="{top + span - bar:.1f}" width="{step * 0.8:.1f}" '
                         f'height="{bar:.1f}" fill="{BAR}"><title>{escape(label)}: {count:,}</title></rect>')
        if i % 6 == 0:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{height - 10}" text-anchor="middle" font-size="11" '
                         f'fill="currentColor">{escape(label)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308
