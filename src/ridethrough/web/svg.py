"""Inline SVG: 90-day uptime bars, the latency chart and status badges.

Drawn on the server as plain SVG text so the status page needs no JavaScript, no CDN and
no chart library, renders on a phone, and still works when everything upstream is down.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from ridethrough.health.history import DayBar, LatencyPoint

COLOR = {0: "#2da44e", 1: "#d4a72c", 2: "#e16f24", 3: "#cf222e"}
NO_DATA = "#d0d7de"
SERIES = ("#0969da", "#8250df", "#bf3989", "#1a7f37", "#9a6700", "#cf222e", "#57606a")
STATUS_COLOR = {"operational": COLOR[0], "degraded_performance": COLOR[1],
                "partial_outage": COLOR[2], "major_outage": COLOR[3],
                "under_maintenance": "#0969da"}


def _day(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def uptime_bars(bars: list[DayBar], label: str) -> str:
    w, gap, h = 6, 2, 34
    rects = []
    for i, b in enumerate(bars):
        color = COLOR.get(b.worst, COLOR[3]) if b.has_data else NO_DATA
        up = f"{b.uptime * 100:.2f}% of {b.total} requests ok" if b.uptime is not None else "no data"
        worst = ["", ", degraded", ", partial outage", ", major outage"][min(b.worst, 3)]
        rects.append(f'<rect x="{i * (w + gap)}" y="0" width="{w}" height="{h}" rx="1" '
                     f'fill="{color}"><title>{_day(b.start)}: {up}{worst}</title></rect>')
    total_w = len(bars) * (w + gap) - gap
    return (f'<svg class="bars" viewBox="0 0 {total_w} {h}" preserveAspectRatio="none" '
            f'role="img" aria-label="{escape(label)}: uptime over {len(bars)} days" '
            f'xmlns="http://www.w3.org/2000/svg">{"".join(rects)}</svg>')


def latency_chart(series: dict[str, list[LatencyPoint]], width: int = 640, height: int = 220) -> str:
    """p95 latency per hour, one line per route; dashed p50 for the first few."""
    left, right, top, bottom = 64, 12, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [p.p95_ms for pts in series.values() for p in pts if p.p95_ms is not None]
    if not values:
        return ('<p class="muted">No successful requests in the last 24 hours to chart.</p>')
    top_ms = max(values) * 1.1 or 1.0
    n = max((len(pts) for pts in series.values()), default=1)
    step = plot_w / max(1, n - 1)

    def y(ms: float) -> float:
        return top + plot_h - ms / top_ms * plot_h

    parts = [(f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
              f'aria-label="p95 latency per hour, last 24 hours" '
              f'xmlns="http://www.w3.org/2000/svg">')]
    for frac in (0.0, 0.5, 1.0):
        ms = top_ms * frac
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(ms):.1f}" y2="{y(ms):.1f}" '
                     f'stroke="#d0d7de" stroke-width="1"/>')
        parts.append(f'<text x="{left - 4}" y="{y(ms) + 4:.1f}" text-anchor="end" '
                     f'font-size="16" fill="#57606a">{_fmt_ms(ms)}</text>')
    first = next(iter(series.values()))
    for i in (0, n // 2, n - 1):
        if i < len(first):
            label = datetime.fromtimestamp(first[i].start, UTC).strftime("%H:%M")
            anchor = "end" if i == n - 1 and n > 1 else "middle"   # keep the last label inside
            parts.append(f'<text x="{left + i * step:.1f}" y="{height - 6}" text-anchor="{anchor}" '
                         f'font-size="16" fill="#57606a">{label}</text>')
    for idx, (name, pts) in enumerate(series.items()):
        color = SERIES[idx % len(SERIES)]
        for attr, dash in (("p95_ms", ""), ("p50_ms", ' stroke-dasharray="4 3" opacity="0.6"')):
            coords = [f"{left + i * step:.1f},{y(getattr(p, attr)):.1f}"
                      for i, p in enumerate(pts) if getattr(p, attr) is not None]
            if len(coords) == 1:
                cx, cy = coords[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{color}"/>')
            elif coords:
                parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2"{dash} '
                             f'points="{" ".join(coords)}"><title>{escape(name)} '
                             f'{attr[:3]}</title></polyline>')
    parts.append("</svg>")
    return "".join(parts)


def legend(names: list[str]) -> str:
    items = "".join(f'<li><span class="swatch" style="background:{SERIES[i % len(SERIES)]}">'
                    f'</span>{escape(n)}</li>' for i, n in enumerate(names))
    return f'<ul class="legend">{items}<li class="muted">solid p95 · dashed p50</li></ul>'


def _fmt_ms(ms: float) -> str:
    return f"{ms / 1000:.1f}s" if ms >= 1000 else f"{ms:.0f}ms"


def _text_width(text: str) -> int:
    return int(len(text) * 6.6) + 12


def badge(label: str, message: str, color: str) -> str:
    """A flat, shields-style badge."""
    lw, mw = _text_width(label), _text_width(message)
    w = lw + mw
    label_e, message_e = escape(label), escape(message)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="20" role="img" '
        f'aria-label="{label_e}: {message_e}"><title>{label_e}: {message_e}</title>'
        f'<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" '
        f'stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{w}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{lw}" height="20" fill="#555"/>'
        f'<rect x="{lw}" width="{mw}" height="20" fill="{color}"/>'
        f'<rect width="{w}" height="20" fill="url(#s)"/></g>'
        f'<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" '
        f'font-size="11"><text x="{lw / 2:.1f}" y="14">{label_e}</text>'
        f'<text x="{lw + mw / 2:.1f}" y="14">{message_e}</text></g></svg>')
