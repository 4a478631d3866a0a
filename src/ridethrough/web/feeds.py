"""Incident history as Atom and RSS feeds (/history.atom, /history.rss).

Statuspage serves both, and feed readers, chat integrations and "watch this page" tools
consume them without any setup. One entry per incident, its timeline as the content.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape

from ridethrough.health.incident_model import Incident
from ridethrough.health.statuspage_json import iso


def _content(inc: Incident) -> str:
    lines = [f"<p><strong>{escape(u.status.capitalize())}</strong> "
             f"({escape(iso(u.created_at) or '')}) — {escape(u.body)}</p>"
             for u in reversed(inc.updates)]
    if inc.postmortem:
        lines.append(f"<p><strong>Post-mortem</strong> — {escape(inc.postmortem)}</p>")
    return "".join(lines)


def atom(title: str, base_url: str, incidents: list[Incident], now: float) -> str:
    base = base_url.rstrip("/")
    updated = max((i.updated_at for i in incidents), default=now)
    entries = "".join(
        f"<entry><id>tag:ridethrough,incident:{escape(i.id)}</id>"
        f"<title>{escape(i.name)}</title><published>{iso(i.created_at)}</published>"
        f"<updated>{iso(i.updated_at)}</updated>"
        f'<link rel="alternate" type="text/html" href="{escape(base)}/status#incident-{escape(i.id)}"/>'
        f'<content type="html">{escape(_content(i))}</content></entry>'
        for i in incidents)
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">'
            f"<id>tag:ridethrough,{escape(base)}:history</id>"
            f"<title>{escape(title)} status - incident history</title>"
            f'<link rel="alternate" type="text/html" href="{escape(base)}/status"/>'
            f'<link rel="self" type="application/atom+xml" href="{escape(base)}/history.atom"/>'
            f"<updated>{iso(updated)}</updated><author><name>{escape(title)}</name></author>"
            f"{entries}</feed>")


def rss(title: str, base_url: str, incidents: list[Incident], now: float) -> str:
    base = base_url.rstrip("/")

    def date(ts: float) -> str:
        return format_datetime(datetime.fromtimestamp(ts, UTC))

    items = "".join(
        f"<item><title>{escape(i.name)}</title>"
        f"<description>{escape(_content(i))}</description>"
        f"<pubDate>{date(i.created_at)}</pubDate>"
        f"<link>{escape(base)}/status#incident-{escape(i.id)}</link>"
        f'<guid isPermaLink="false">{escape(i.id)}</guid></item>'
        for i in incidents)
    return ('<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>{escape(title)} status - incident history</title>"
            f"<link>{escape(base)}/status</link>"
            f"<description>Incidents detected by ridethrough from its own traffic</description>"
            f"<lastBuildDate>{date(now)}</lastBuildDate>{items}</channel></rss>")
