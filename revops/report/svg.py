"""Small inline-SVG charts (no JavaScript, no network): lines over time, bars over time,
horizontal stacked bars. Every chart has axes with labelled ticks and a legend."""

from __future__ import annotations

import html
import time

W, H = 900, 320
LEFT, RIGHT, TOP, BOTTOM = 70, 170, 20, 40
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")


def _esc(s) -> str:
    return html.escape(str(s), quote=True)


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    mag = 10 ** (len(str(int(v))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if v <= step * mag:
            return step * mag
    return 10 * mag


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.2g}"


def _frame(title: str, x0: float, x1: float, y_max: float, y_label: str, time_axis: bool = True) -> list[str]:
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
           f'role="img" aria-label="{_esc(title)}" font-family="sans-serif" font-size="11">',
           f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>']
    for i in range(5):
        y = TOP + ph - ph * i / 4
        out.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
                   f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(y_max * i / 4)}</text>')
    out.append(f'<text x="14" y="{TOP + ph / 2}" transform="rotate(-90 14 {TOP + ph / 2})" '
               f'text-anchor="middle">{_esc(y_label)}</text>')
    if time_axis:
        span = max(x1 - x0, 1)
        fmt = "%m-%d %H:%M" if span <= 7 * 86400 else "%Y-%m-%d"
        for i in range(5):
            t = x0 + span * i / 4
            x = LEFT + pw * i / 4
            out.append(f'<text x="{x:.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">'
                       f'{time.strftime(fmt, time.gmtime(t))}</text>')
    return out


def _legend(names: list[str]) -> list[str]:
    out = []
    for i, name in enumerate(names[:14]):
        y = TOP + 8 + i * 16
        out.append(f'<rect x="{W - RIGHT + 10}" y="{y - 8}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
                   f'<text x="{W - RIGHT + 26}" y="{y + 1}">{_esc(name)}</text>')
    return out


def line_chart(title: str, series: dict[str, list[tuple[float, float]]], y_label: str, step: bool = True) -> str:
    """Lines over time, one per series (`step`: the value holds until the next point)."""
    points = [p for pts in series.values() for p in pts]
    if not points:
        return empty(title)
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y_max = _nice_max(max(p[1] for p in points))
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    sx = lambda t: LEFT + (t - x0) / max(x1 - x0, 1) * pw  # noqa: E731
    sy = lambda v: TOP + ph - v / y_max * ph  # noqa: E731
    out = _frame(title, x0, x1, y_max, y_label)
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
              limit: float | None = None, limit_label: str = "") -> str:
    """Grouped bars per time bucket, one colour per series; `limit` draws a dashed budget line."""
    points = [p for pts in series.values() for p in pts]
    if not points:
        return empty(title)
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points) + bucket_s
    y_max = _nice_max(max([p[1] for p in points] + [limit or 0]))
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    slot = pw * bucket_s / max(x1 - x0, 1)
    bar = max(slot * 0.8 / len(series), 0.5)
    out = _frame(title, x0, x1, y_max, y_label)
    for i, (name, pts) in enumerate(series.items()):
        for t, v in pts:
            x = LEFT + (t - x0) / (x1 - x0) * pw + slot * 0.1 + i * bar
            h = v / y_max * ph
            out.append(f'<rect x="{x:.1f}" y="{TOP + ph - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                       f'fill="{PALETTE[i % len(PALETTE)]}"><title>{_esc(name)}: {_fmt(v)}</title></rect>')
    if limit is not None:
        y = TOP + ph - limit / y_max * ph
        out.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d62728" '
                   f'stroke-dasharray="6 4" stroke-width="1.5"/>')
    out += _legend(list(series))
    if limit is not None:
        out.append(f'<text x="{W - RIGHT + 10}" y="{TOP + 8 + len(series) * 16 + 1}" fill="#d62728">'
                   f'- - {_esc(limit_label)}</text>')
    return "\n".join(out + ["</svg>"])


def hbar_chart(title: str, rows: dict[str, dict[str, int]], x_label: str) -> str:
    """Horizontal stacked bars: one row per label, stacked by key (e.g. rule by outcome)."""
    if not rows:
        return empty(title)
    keys = sorted({k for r in rows.values() for k in r})
    labels = sorted(rows, key=lambda r: -sum(rows[r].values()))[:20]
    x_max = _nice_max(max(sum(rows[r].values()) for r in labels))
    left, row_h = 230, 20
    h = TOP + BOTTOM + row_h * len(labels)
    pw = W - left - RIGHT
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h}" width="{W}" height="{h}" role="img" '
           f'aria-label="{_esc(title)}" font-family="sans-serif" font-size="11">']
    for i in range(5):
        x = left + pw * i / 4
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{h - BOTTOM}" stroke="#e5e5e5"/>'
                   f'<text x="{x:.1f}" y="{h - BOTTOM + 16}" text-anchor="middle">{_fmt(x_max * i / 4)}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{h - 6}" text-anchor="middle">{_esc(x_label)}</text>')
    for j, label in enumerate(labels):
        y, x = TOP + j * row_h, left
        out.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{_esc(label[:36])}</text>')
        for i, k in enumerate(keys):
            v = rows[label].get(k, 0)
            w = v / x_max * pw
            if w:
                out.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
                           f'fill="{PALETTE[i % len(PALETTE)]}"><title>{_esc(label)} {_esc(k)}: {v}</title></rect>')
            x += w
    return "\n".join(out + _legend(keys) + ["</svg>"])


def empty(title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} 60" width="{W}" height="60" role="img" '
            f'aria-label="{_esc(title)}" font-family="sans-serif" font-size="13"><text x="{LEFT}" y="35" '
            f'fill="#777">no data for this chart in the database</text></svg>')
