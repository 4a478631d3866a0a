"""The status page at /status: server-rendered HTML, readable on a phone, no CDN, no JS.

Built with f-strings and ``html.escape`` (no template engine dependency). What a person
needs first comes first: the overall banner, open incidents, each route's status, then
providers — our view beside the provider's own status page — then latency and history.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING

from ridethrough.health import statuspage_json as v2
from ridethrough.health.history import DayBar, LatencyPoint, overall_uptime
from ridethrough.health.incident_model import Incident, human_duration
from ridethrough.health.status import LABEL
from ridethrough.store import StoreUnavailable
from ridethrough.web import svg

if TYPE_CHECKING:
    from ridethrough.health.reader import HealthReader
    from ridethrough.health.view import HealthView

CSS = """
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
"DejaVu Sans",sans-serif;color:#1f2328;background:#f6f8fa}main{max-width:860px;margin:0 auto;
padding:16px}h1{font-size:1.5em;margin:.2em 0 .6em}h2{font-size:1.15em;margin:1.6em 0 .5em}
.banner{padding:14px 16px;border-radius:8px;color:#fff;font-weight:600;font-size:1.1em}
.i-none{background:#2da44e}.i-minor{background:#d4a72c}.i-major{background:#e16f24}
.i-critical{background:#cf222e}.i-maintenance{background:#0969da}
.warn{background:#fff8c5;border:1px solid #d4a72c;padding:10px 14px;border-radius:8px;margin:12px 0}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:12px 14px;margin:8px 0}
.row{display:flex;flex-wrap:wrap;justify-content:space-between;gap:4px 12px;align-items:baseline}
.name{font-weight:600;word-break:break-word}.muted{color:#57606a;font-size:.9em}
.status{font-weight:600;white-space:nowrap}.s-operational{color:#1a7f37}
.s-degraded_performance{color:#9a6700}.s-partial_outage{color:#bc4c00}
.s-major_outage{color:#cf222e}.s-under_maintenance{color:#0969da}
svg.bars{width:100%;height:34px;display:block;margin:8px 0 2px}
.barlegend{display:flex;justify-content:space-between}svg.chart{width:100%;height:auto}
.group{margin-left:0}.child{margin-left:14px}
ol.timeline{list-style:none;padding:0;margin:8px 0 0;border-left:2px solid #d0d7de}
ol.timeline li{padding:2px 0 8px 12px}.ustatus{font-weight:600;text-transform:capitalize}
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:4px 14px;margin:6px 0}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:5px;
vertical-align:-1px}footer{margin:2em 0 1em;font-size:.9em}footer a{margin-right:12px}
.reasons{font-size:.9em;color:#57606a;margin-top:2px}
"""


def when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _status(status: str) -> str:
    return f'<span class="status s-{escape(status)}">{escape(LABEL.get(status, status))}</span>'


def _bars_block(bars: list[DayBar] | None, name: str) -> str:
    if bars is None:
        return '<div class="muted">History unavailable (store down).</div>'
    up = overall_uptime(bars)
    pct = f"{up * 100:.2f}% uptime" if up is not None else "no traffic yet"
    return (svg.uptime_bars(bars, name) +
            f'<div class="barlegend muted"><span>{len(bars)} days ago</span><span>{pct}</span>'
            f'<span>today</span></div>')


def _component(view: HealthView, key: str, bars: dict[str, list[DayBar]] | None,
               css: str = "card") -> str:
    c = view.catalog.components[key]
    status = view.status_of(key)
    why = view.reasons.get(key)
    reasons = ""
    if why and status != "operational":
        reasons = (f'<div class="reasons">since {when(view.since.get(key))}: '
                   f'{escape("; ".join(why))}</div>')
    desc = f'<div class="muted">{escape(c.description)}</div>' if c.description and c.kind == "route" else ""
    return (f'<div class="{css}" id="component-{escape(c.id)}"><div class="row">'
            f'<span class="name">{escape(c.name)}</span>{_status(status)}</div>{desc}{reasons}'
            f'{_bars_block(bars.get(key) if bars is not None else None, c.name)}</div>')


def _upstream(svc: HealthReader, view: HealthView, provider: str) -> str:
    if provider not in svc.page.status_pages:
        return ""
    line = view.upstream.get(provider)
    if line is None:
        return f'<div class="muted">{escape(provider)}’s own status page: not checked yet.</div>'
    if not line.ok:
        return (f'<div class="muted">{escape(provider)}’s own status page: unreachable '
                f'({escape(line.error or "")}), checked {when(line.checked_at)}.</div>')
    text = line.description or line.text
    return (f'<div class="muted">{escape(provider)}’s own status page says: '
            f'<strong>{escape(text or "")}</strong>{" — " + escape(line.text) if line.bad else ""}'
            f' (checked {when(line.checked_at)}).</div>')


def _incident(inc: Incident, now: float) -> str:
    end = "still ongoing" if inc.ended_at is None and inc.unresolved else f"ended {when(inc.ended_at)}"
    items = "".join(
        f'<li><span class="ustatus">{escape(u.status)}</span> '
        f'<span class="muted">{when(u.created_at)}</span><br>{escape(u.body)}</li>'
        for u in reversed(inc.updates))
    pm = (f'<h4>Post-mortem</h4><p>{escape(inc.postmortem)}</p>' if inc.postmortem else "")
    return (f'<div class="card" id="incident-{escape(inc.id)}"><div class="row">'
            f'<span class="name">{escape(inc.name)}</span>'
            f'<span class="ustatus">{escape(inc.status)}</span></div>'
            f'<div class="muted">impact {escape(inc.impact)} · started {when(inc.started_at)} · '
            f'{end} · lasted {human_duration(inc.duration_s(now))} · '
            f'{inc.requests_affected} requests affected, {inc.requests_saved} saved by failover</div>'
            f'<ol class="timeline">{items}</ol>{pm}</div>')


def _learned(view: HealthView) -> str:
    """What the gateway learned of each target's latency, and the timeouts it applies."""
    rows, started, won, refused = [], 0, 0, 0
    entries = [({}, view.latency_all)] if view.latency_all is not None else view.latency
    for labels, lv in entries:
        who = f"worker {labels['worker']}: " if "worker" in labels else ""
        rows += [f"<tr><td>{escape(who + r['target'])}</td><td>{escape(r['phase'])}</td>"
                 f"<td>{r['count']}</td><td>{r['p50_ms']}</td><td>{r['p95_ms']}</td>"
                 f"<td>{r['p99_ms']}</td><td>{r.get('timeout_s', '')}</td></tr>"
                 for r in lv["targets"]]
        h = lv["hedges"]
        started, won, refused = started + h["started"], won + h["won"], refused + h["budget_refused"]
    if not rows:
        return '<h2>Learned latency</h2><p class="muted">Nothing learned yet.</p>'
    return ('<h2>Learned latency</h2><table class="learned"><tr><th>target</th><th>phase</th>'
            "<th>calls</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>timeout s</th></tr>"
            f'{"".join(rows)}</table><p class="muted">Hedged requests: {started} started, '
            f"{won} answered first, {refused} held back by the budget.</p>")


def render(svc: HealthReader, view: HealthView | None = None) -> str:
    """The page for ``view`` (default: the service's view now). History bars are read from
    the store, which every worker shares."""
    view = view if view is not None else svc.view()
    now = view.now
    cat = view.catalog
    incidents = view.incidents
    indicator = v2.indicator_for(cat, view.status_of, incidents)
    keys = [c.key for c in cat.leaves()]
    routes = [c.key for c in cat.components.values() if c.kind == "route"]
    bars: dict[str, list[DayBar]] | None
    latency: dict[str, list[LatencyPoint]]
    try:
        history = svc.read_history(keys, routes, now)
        bars, latency = history.bars, history.latency
    except StoreUnavailable:
        bars, latency = None, {}
    head = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<meta http-equiv="refresh" content="30"><title>{escape(svc.page.name)} status'
            f'</title><link rel="alternate" type="application/atom+xml" href="history.atom">'
            f'<style>{CSS}</style></head><body><main>'
            f'<h1>{escape(svc.page.name)} status</h1>'
            f'<div class="banner i-{indicator}" id="overall">'
            f'{escape(v2.status_obj(indicator)["description"])}</div>')
    out = [head]
    h = view.store
    if not h.ok:
        out.append(f'<div class="warn" id="store-warning"><strong>History store unavailable</strong>'
                   f' since {when(h.since)}: {escape(h.error or "")}. Requests are unaffected; '
                   f'live status below is current, but history is not being recorded.</div>')
    for note in h.notes:
        out.append(f'<div class="warn">{escape(note)}</div>')
    active = [i for i in incidents if i.unresolved]
    if active:
        out.append("<h2>Active incidents</h2>" + "".join(_incident(i, now) for i in active))
    out.append("<h2>Routes</h2>" + "".join(_component(view, k, bars) for k in routes))
    out.append("<h2>Providers</h2>")
    for g in (c for c in cat.components.values() if c.kind == "provider"):
        assert g.provider is not None
        out.append(f'<div class="card group" id="component-{escape(g.id)}"><div class="row">'
                   f'<span class="name">{escape(g.name)}</span>{_status(view.status_of(g.key))}'
                   f'</div>{_upstream(svc, view, g.provider)}'
                   + "".join(_component(view, ch.key, bars, "child") for ch in cat.children(g.key))
                   + "</div>")
    out.append(_learned(view))
    out.append("<h2>Latency, last 24 hours</h2>")
    if latency:
        names = {k: cat.components[k].name for k in latency}
        out.append(svg.latency_chart({names[k]: v for k, v in latency.items()}) +
                   svg.legend(list(names.values())))
    else:
        out.append('<p class="muted">Latency history unavailable.</p>')
    past = [i for i in incidents if not i.unresolved]
    out.append("<h2>Incident history</h2>" + ("".join(_incident(i, now) for i in past)
                                               or '<p class="muted">No incidents recorded.</p>'))
    out.append(f'<footer class="muted">Updated {when(now)}. '
               f'<a href="api/v2/summary.json">JSON API</a><a href="history.atom">Atom</a>'
               f'<a href="history.rss">RSS</a><a href="metrics">Metrics</a></footer>'
               f'</main></body></html>')
    return "".join(out)
