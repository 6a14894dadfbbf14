"""The HTML page of `revops report`: a few headline numbers, then the charts, self-contained
(inline SVG and CSS, nothing fetched), so it opens anywhere and can be mailed as one file."""

from __future__ import annotations

import html
import time

from revops.report import svg
from revops.report.data import ReportData

_CSS = """body{font-family:sans-serif;margin:24px auto;max-width:960px;color:#222}
h1{font-size:22px}h2{font-size:16px;margin-top:28px}.kpi{display:flex;gap:14px;flex-wrap:wrap}
.kpi div{background:#f3f6fa;border-radius:6px;padding:10px 14px}.kpi b{display:block;font-size:20px}
p.note{color:#666;font-size:12px}p.nothing{color:#555;font-style:italic}"""


def _sat(msat) -> str:
    return "unknown" if msat is None else f"{msat / 1000:,.0f} sat"


def render(data: ReportData, title: str = "revops report") -> str:
    """Returns the report page."""
    unit = "hour" if data.bucket_s == 3600 else "day"
    t = data.totals
    when = lambda s: time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(s))  # noqa: E731
    kpis = [("routing income", _sat(t["routing_income_msat"])), ("rebalance spend", _sat(t["rebalance_spend_msat"])),
            ("fee updates sent", f"{t['fee_updates']:,}"), ("decisions", f"{t['decisions']:,}"),
            ("fee cycles", f"{t['cycles']:,}"), ("channels", f"{t['channels']:,}")]
    period = (data.start_s, data.end_s)  # every time axis spans the same period with the same ticks
    span = f"from {when(data.start_s)} to {when(data.end_s)}"
    revenue = {"routing income (sat)": [(b, v / 1000) for b, v in data.income_msat]}
    if data.spend_msat is not None:
        revenue["rebalance spend (sat)"] = [(b, v / 1000) for b, v in data.spend_msat]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{when(data.start_s)} to {when(data.end_s)} &middot; policy "
        f"{html.escape(', '.join(data.policies) or 'none')}</p>",
        '<div class="kpi">' + "".join(f"<div>{html.escape(k)}<b>{html.escape(v)}</b></div>" for k, v in kpis) + "</div>",
        "<h2>Fee per channel over time</h2>",
        svg.line_chart("Fee per channel over time", data.fee_series, "fee (ppm)", x_range=period,
                       nothing=f"No channel had a fee on record {span}."),
        f'<p class="note">The fee on chain after each cycle, for the {len(data.fee_series)} channels that earned '
        f"most (and whose fee moved).</p>",
        f"<h2>Revenue and spend per {unit}</h2>",
        svg.bar_chart("Revenue and spend", revenue, "sat", data.bucket_s, x_range=period,
                      nothing=f"No routing income and no rebalance spend {span}."),
    ]
    if data.spend_msat is None:
        parts.append('<p class="note">No rebalancer records in this database: rebalance spend unknown.</p>')
    daily_budget = data.gossip_budget_per_day
    bucket_budget = None if daily_budget is None else daily_budget * data.bucket_s / 86400
    parts += [f"<h2>Budget burn: fee updates (gossip) per {unit}</h2>",
              svg.bar_chart("Budget burn", {"fee updates sent": data.fee_updates}, "updates", data.bucket_s,
                            limit=bucket_budget, limit_label=f"node budget per {unit}", x_range=period,
                            nothing=f"No fee update was sent {span}.")]
    if data.spend_msat is not None:
        burn, total = [], 0
        for b, v in data.spend_msat:
            total += v
            burn.append((b, total / 1000))
        parts += ["<h2>Budget burn: cumulative rebalance spend</h2>",
                  svg.line_chart("Cumulative rebalance spend", {"spend (sat)": burn}, "sat", step=False,
                                 x_range=period, nothing=f"Nothing was rebalanced {span}: 0 sat spent.")]
    parts += ["<h2>Decisions by rule</h2>",
              svg.hbar_chart("Decisions by rule", data.decisions_by_rule, "decisions (stacked by outcome)",
                             nothing=f"No decisions {span}."),
              "</body></html>"]
    return "\n".join(parts)
