"""A small line chart as a standalone SVG string, written by hand (no plotting dependency).

Enough for the threshold sweep: a shared x axis, y from 0 to 1 shown as percent, one
polyline with point markers per series, a legend, and an optional marked x (the current
policy's value). The output is deterministic: the same data gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    ys: tuple[float, ...]  # fractions 0..1, one per x


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def line_chart(
    xs: Sequence[float],
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str = "share of conversations",
    mark_x: float | None = None,
    mark_label: str = "current",
    width: int = 720,
    height: int = 420,
) -> str:
    """An SVG document plotting each series against ``xs`` (y in 0..1, drawn as percent)."""
    if not xs:
        raise ValueError("nothing to plot: no x values")
    left, right, top, bottom = 70, 180, 50, 60
    pw, ph = width - left - right, height - top - bottom
    x0, x1 = min(xs), max(xs)
    span = (x1 - x0) or 1.0

    def px(x: float) -> float:
        return left + (x - x0) / span * pw

    def py(y: float) -> float:
        return top + (1.0 - max(0.0, min(1.0, y))) * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2:.1f}" y="24" text-anchor="middle" font-size="15" '
        f'font-weight="bold">{escape(title)}</text>',
    ]
    for i in range(6):  # horizontal grid every 20 %
        y = py(i / 5)
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{i * 20}%</text>'
        )
    ticks = list(xs) if len(xs) <= 11 else [xs[round(i * (len(xs) - 1) / 10)] for i in range(11)]
    for x in ticks:
        out.append(
            f'<line x1="{px(x):.1f}" y1="{top + ph}" x2="{px(x):.1f}" y2="{top + ph + 5}" '
            f'stroke="#333"/><text x="{px(x):.1f}" y="{top + ph + 18}" '
            f'text-anchor="middle">{x:g}</text>'
        )
    out.append(
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>'
        f'<text x="{left + pw / 2:.1f}" y="{height - 16}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
        f'<text transform="translate(18 {top + ph / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    if mark_x is not None and x0 <= mark_x <= x1:
        mx = px(mark_x)
        out.append(
            f'<line x1="{mx:.1f}" y1="{top}" x2="{mx:.1f}" y2="{top + ph}" stroke="#555" '
            f'stroke-dasharray="4 3"/><text x="{mx + 4:.1f}" y="{top + 12}" fill="#555">'
            f"{escape(mark_label)} {mark_x:g}</text>"
        )
    for k, s in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, s.ys, strict=True))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in zip(xs, s.ys, strict=True):
            out.append(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}">'
                f"<title>{escape(s.label)} at {x:g}: {_fmt(y * 100)}%</title></circle>"
            )
        ly = top + 10 + k * 20
        out.append(
            f'<line x1="{left + pw + 14}" y1="{ly}" x2="{left + pw + 34}" y2="{ly}" '
            f'stroke="{color}" stroke-width="2"/><text x="{left + pw + 40}" y="{ly + 4}">'
            f"{escape(s.label)}</text>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"
