"""Bar charts as SVG text, rendered on the server: no script, no library, no build step.

The Content-Security-Policy (edge_agent/web/headers.py) forbids inline styles, so the
elements carry geometry as attributes and their look as classes that static/rau.css
colours; every label is escaped (an indicator id comes from a site). A bar whose value
is unknown (a hit rate with no control recorded) is drawn as no bar and says "unknown",
never as a zero.

    svg = bar_chart("Hit rate per indicator", [Bar("C-WEIGHT-10", 12.5, note="4 / 32")])
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

ROW_PX = 22
LABEL_PX = 190
BAR_PX = 360
VALUE_PX = 280
TOP_PX = 8


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None  # None: unknown
    target: float | None = None  # drawn as a tick across the bar
    note: str = ""  # after the value, e.g. "3 of 12 controls"
    kind: str = ""  # a CSS class suffix, e.g. the channel's code


def _fmt(value: float, unit: str) -> str:
    return f"{value:.1f} {unit}".strip() if unit else f"{value:g}"


def bar_chart(title: str, bars: list[Bar], unit: str = "%", max_value: float | None = None) -> Markup:
    """Horizontal bars, one row each, scaled to `max_value` (100 for percentages, else the largest)."""
    top = max([b.value or 0.0 for b in bars] + [b.target or 0.0 for b in bars] + [0.0])
    scale_max = max_value if max_value is not None else (top or 1.0)
    width = LABEL_PX + BAR_PX + VALUE_PX
    height = TOP_PX * 2 + ROW_PX * max(1, len(bars))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}"'
             f' viewBox="0 0 {width} {height}"><title>{escape(title)}</title>']
    if not bars:
        parts.append(f'<text class="chart-empty" x="4" y="{TOP_PX + 15}">nothing to show</text>')
    for i, bar in enumerate(bars):
        y = TOP_PX + i * ROW_PX
        label = bar.label if len(bar.label) <= 28 else bar.label[:27] + "…"
        parts.append(f'<text class="chart-label" x="{LABEL_PX - 6}" y="{y + 15}" text-anchor="end">'
                     f'{escape(label)}</text>')
        kind = f" bar-{escape(bar.kind)}" if bar.kind else ""
        if bar.value is None:
            text = "unknown"
            parts.append(f'<rect class="bar-unknown" x="{LABEL_PX}" y="{y + 3}" width="{BAR_PX}"'
                         f' height="{ROW_PX - 6}"/>')
        else:
            text = _fmt(bar.value, unit)
            length = round(BAR_PX * min(bar.value, scale_max) / scale_max, 1)
            parts.append(f'<rect class="bar{kind}" x="{LABEL_PX}" y="{y + 3}" width="{length}"'
                         f' height="{ROW_PX - 6}"><title>{escape(bar.label)}: {escape(text)}</title></rect>')
        if bar.target is not None:
            x = round(LABEL_PX + BAR_PX * min(bar.target, scale_max) / scale_max, 1)
            parts.append(f'<line class="bar-target" x1="{x}" x2="{x}" y1="{y + 1}" y2="{y + ROW_PX - 1}">'
                         f'<title>target {escape(_fmt(bar.target, unit))}</title></line>')
            text += f" (target {_fmt(bar.target, unit)})"
        if bar.note:
            text += f" · {bar.note}"
        parts.append(f'<text class="chart-value" x="{LABEL_PX + BAR_PX + 6}" y="{y + 15}">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
