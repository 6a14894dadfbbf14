"""Small inline-SVG charts (no JavaScript, no network): lines over time, bars over time,
horizontal stacked bars. Every chart has labelled axes scaled to its data with round ticks, the
same round UTC time ticks as the other charts of the period, and a legend; a chart with nothing
to draw is a sentence instead."""

from __future__ import annotations

import html
import math
import time

W, H = 900, 320
LEFT, RIGHT, TOP, BOTTOM = 70, 170, 20, 52
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
LIMIT_COLOUR = "#444"  # a budget line is grey, so it never reads as one more series
TIME_STEPS_S = (3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400, 14 * 86400,
                30 * 86400)
X_TIME_LABEL = "time (UTC)"


def _esc(s) -> str:
    return html.escape(str(s), quote=True)


def nice_axis(v_max: float) -> tuple[float, float]:
    """(top, step) of an axis from 0 that holds v_max: a round step (1, 2, 2.5 or 5 × 10^k) of
    at least v_max/5, and the first multiple of it at or above v_max. The data then fills more
    than 70 % of the axis (issue 17: 1,030 ppm drew on a 0-2,000 axis)."""
    if v_max <= 0:
        return 1.0, 0.25
    target = v_max / 5
    mag = 10 ** math.floor(math.log10(target))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= target * (1 - 1e-9))
    return math.ceil(v_max / step - 1e-9) * step, step


def time_ticks(x0: float, x1: float, max_ticks: int = 7) -> tuple[list[float], str]:
    """Round UTC times within [x0, x1] (every 1 h, 2 h, ... 30 d) and their label format."""
    span = max(x1 - x0, 1)
    step = next((s for s in TIME_STEPS_S if span / s <= max_ticks - 1), TIME_STEPS_S[-1])
    first = math.ceil(x0 / step) * step
    ticks = [t for t in range(int(first), int(x1) + 1, step)]
    return ticks, "%m-%d %H:%M" if step < 86400 else "%m-%d"


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.3g}"


def _frame(title: str, x_range: tuple[float, float], y_top: float, y_step: float, y_label: str,
           x_label: str = X_TIME_LABEL) -> list[str]:
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
           f'role="img" aria-label="{_esc(title)}" font-family="sans-serif" font-size="11">',
           f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>']
    for i in range(int(round(y_top / y_step)) + 1):
        v = i * y_step
        y = TOP + ph - ph * v / y_top
        out.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
                   f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(v)}</text>')
    out.append(f'<text x="14" y="{TOP + ph / 2}" transform="rotate(-90 14 {TOP + ph / 2})" '
               f'text-anchor="middle">{_esc(y_label)}</text>')
    x0, x1 = x_range
    ticks, fmt = time_ticks(x0, x1)
    for t in ticks:
        x = LEFT + pw * (t - x0) / max(x1 - x0, 1)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP + ph}" y2="{TOP + ph + 4}" stroke="#999"/>'
                   f'<text class="tick" data-t="{t}" x="{x:.1f}" y="{TOP + ph + 16}" text-anchor="middle">'
                   f'{time.strftime(fmt, time.gmtime(t))}</text>')
    out.append(f'<text class="x-label" x="{LEFT + pw / 2}" y="{H - 8}" text-anchor="middle">{_esc(x_label)}</text>')
    return out


def _legend(names: list[str]) -> list[str]:
    out = []
    for i, name in enumerate(names[:14]):
        y = TOP + 8 + i * 16
        out.append(f'<rect x="{W - RIGHT + 10}" y="{y - 8}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
                   f'<text x="{W - RIGHT + 26}" y="{y + 1}">{_esc(name)}</text>')
    return out


def _x_range(points, x_range, extra_s: float = 0) -> tuple[float, float]:
    if x_range is not None:
        return x_range
    return min(p[0] for p in points), max(p[0] for p in points) + extra_s


def line_chart(title: str, series: dict[str, list[tuple[float, float]]], y_label: str, step: bool = True,
               x_range: tuple[float, float] | None = None, nothing: str = "") -> str:
    """Lines over time, one per series (`step`: the value holds until the next point). With
    nothing to draw (no points, or all zero) it is the sentence `nothing` instead of a chart."""
    points = [p for pts in series.values() for p in pts]
    if not points or not any(p[1] for p in points):
        return empty(title, nothing)
    x0, x1 = _x_range(points, x_range)
    y_top, y_step = nice_axis(max(p[1] for p in points))
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    sx = lambda t: LEFT + (min(max(t, x0), x1) - x0) / max(x1 - x0, 1) * pw  # noqa: E731
    sy = lambda v: TOP + ph - v / y_top * ph  # noqa: E731
    out = _frame(title, (x0, x1), y_top, y_step, y_label)
    for i, (name, pts) in enumerate(series.items()):
        path, prev = [], None
        for t, v in pts:
            if step and prev is not None:
                path.append(f"L{sx(t):.1f},{sy(prev):.1f}")
            path.append(f"{'M' if not path else 'L'}{sx(t):.1f},{sy(v):.1f}")
            prev = v
        out.append(f'<path d="{" ".join(path)}" fill="none" stroke="{PALETTE[i % len(PALETTE)]}" stroke-width="1.8">'
                   f'<title>{_esc(name)}</title></path>')
    return "\n".join(out + _legend(list(series)) + ["</svg>"])


def bar_chart(title: str, series: dict[str, list[tuple[float, float]]], y_label: str, bucket_s: float,
              limit: float | None = None, limit_label: str = "", x_range: tuple[float, float] | None = None,
              nothing: str = "") -> str:
    """Grouped bars per time bucket, one colour per series; `limit` draws a dashed budget line
    when that keeps the data above half the plot's height, else the legend gives its value."""
    points = [p for pts in series.values() for p in pts]
    if not points or not any(p[1] for p in points):
        return empty(title, nothing)
    x0, x1 = _x_range(points, x_range, bucket_s)
    data_max = max(p[1] for p in points)
    y_top, y_step = nice_axis(data_max)
    on_scale = limit is not None and nice_axis(max(data_max, limit))[0] <= 2 * data_max
    if on_scale:
        y_top, y_step = nice_axis(max(data_max, limit))
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    sx = lambda t: LEFT + (min(max(t, x0), x1) - x0) / max(x1 - x0, 1) * pw  # noqa: E731
    out = _frame(title, (x0, x1), y_top, y_step, y_label)
    for i, (name, pts) in enumerate(series.items()):
        for t, v in pts:
            left, right = sx(t), sx(t + bucket_s)  # a bucket past the period's end is cut at the end
            bar = (right - left) * 0.8 / len(series)
            x = left + (right - left) * 0.1 + i * bar
            h = v / y_top * ph
            if bar > 0:
                out.append(f'<rect x="{x:.1f}" y="{TOP + ph - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                           f'fill="{PALETTE[i % len(PALETTE)]}"><title>{_esc(name)}: {_fmt(v)}</title></rect>')
    if on_scale:
        y = TOP + ph - limit / y_top * ph
        out.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="{LIMIT_COLOUR}" '
                   f'stroke-dasharray="6 4" stroke-width="1.5"/>')
    out += _legend(list(series))
    if limit is not None:  # two lines, to fit the legend's width
        lines = (f"- - {limit_label}:", _fmt(limit)) if on_scale else \
            (f"{limit_label}:", f"{_fmt(limit)} (above the scale)")
        for j, text in enumerate(lines):
            out.append(f'<text class="limit" x="{W - RIGHT + 10}" y="{TOP + 9 + (len(series) + j) * 16}" '
                       f'fill="{LIMIT_COLOUR}">{_esc(text)}</text>')
    return "\n".join(out + ["</svg>"])


def hbar_chart(title: str, rows: dict[str, dict[str, int]], x_label: str, nothing: str = "") -> str:
    """Horizontal stacked bars: one row per label, stacked by key (e.g. rule by outcome)."""
    if not rows or not any(sum(r.values()) for r in rows.values()):
        return empty(title, nothing)
    keys = sorted({k for r in rows.values() for k in r})
    labels = sorted(rows, key=lambda r: -sum(rows[r].values()))[:20]
    x_top, x_step = nice_axis(max(sum(rows[r].values()) for r in labels))
    left, row_h = 230, 20
    h = TOP + BOTTOM + row_h * len(labels)
    pw = W - left - RIGHT
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h}" width="{W}" height="{h}" role="img" '
           f'aria-label="{_esc(title)}" font-family="sans-serif" font-size="11">',
           f'<rect class="plot" x="{left}" y="{TOP}" width="{pw}" height="{h - TOP - BOTTOM}" fill="#fafafa" '
           f'stroke="#ccc"/>']
    for i in range(int(round(x_top / x_step)) + 1):
        x = left + pw * i * x_step / x_top
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{h - BOTTOM}" stroke="#e5e5e5"/>'
                   f'<text x="{x:.1f}" y="{h - BOTTOM + 16}" text-anchor="middle">{_fmt(i * x_step)}</text>')
    out.append(f'<text class="x-label" x="{left + pw / 2}" y="{h - 8}" text-anchor="middle">{_esc(x_label)}</text>')
    for j, label in enumerate(labels):
        y, x = TOP + j * row_h, left
        out.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{_esc(label[:36])}</text>')
        for i, k in enumerate(keys):
            v = rows[label].get(k, 0)
            w = v / x_top * pw
            if w:
                out.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
                           f'fill="{PALETTE[i % len(PALETTE)]}"><title>{_esc(label)} {_esc(k)}: {v}</title></rect>')
            x += w
    return "\n".join(out + _legend(keys) + ["</svg>"])


def empty(title: str, sentence: str = "") -> str:
    """A sentence where a chart would have nothing to draw (issue 17: no empty 0-1 axes)."""
    return (f'<p class="nothing" role="note" aria-label="{_esc(title)}">'
            f'{_esc(sentence or "Nothing to draw: the database holds no data for this chart.")}</p>')
