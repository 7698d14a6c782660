"""Charts as inline SVG, drawn on the server: no script, no CDN, readable in light and dark admin themes."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 170
LEFT, RIGHT, TOP, BOTTOM = 70, 8, 14, 30


@dataclass(frozen=True)
class Bar:
    label: str  # the x-axis label (a day or an hour)
    value: float
    part: float = 0.0  # a share of `value` drawn in the warning colour (errors)
    tip: str = ""  # the tooltip; defaults to the label and the value


def _number(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1_000:.0f}k"
    if value >= 1_000:
        return f"{value / 1_000:.1f}k"
    if value == int(value):
        return str(int(value))
    return f"{value:.4g}"


def bar_chart(bars: list[Bar], *, title: str, unit: str = "") -> SafeString:
    """A bar per bucket, the y axis from 0 to the largest value, every few x labels shown."""
    peak = max((b.value for b in bars), default=0) or 1
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = inner_w / max(len(bars), 1)
    gap = min(2.0, step * 0.2)
    every = max(1, round(len(bars) / 6))
    parts = [
        f'<svg class="usage-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{WIDTH - RIGHT}" y2="{TOP}" class="grid"/>',
        f'<line x1="{LEFT}" y1="{TOP + inner_h}" x2="{WIDTH - RIGHT}" y2="{TOP + inner_h}" class="axis"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end">{escape(_number(peak))}{escape(unit)}</text>',
        f'<text x="{LEFT - 6}" y="{TOP + inner_h}" text-anchor="end">0</text>',
    ]
    for i, bar in enumerate(bars):
        x = LEFT + i * step + gap / 2
        w = max(step - gap, 0.5)
        h = inner_h * bar.value / peak
        tip = escape(bar.tip or f"{bar.label}: {_number(bar.value)}{unit}")
        parts.append(
            f'<rect x="{x:.1f}" y="{TOP + inner_h - h:.1f}" width="{w:.1f}" height="{h:.1f}" class="bar">'
            f"<title>{tip}</title></rect>"
        )
        if bar.part:
            hp = inner_h * min(bar.part, bar.value) / peak
            parts.append(
                f'<rect x="{x:.1f}" y="{TOP + inner_h - hp:.1f}" width="{w:.1f}" height="{hp:.1f}" class="part">'
                f"<title>{tip}</title></rect>"
            )
        if i % every == 0:
            parts.append(f'<text x="{x + w / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(bar.label)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text inside is escaped above
