"""Command line for a running gateway's health: ``status`` and ``incidents``.

Both read the same public JSON the status page is built from (so the terminal and the page
never disagree); writing notes and post-mortems goes through the admin API with
RIDETHROUGH_ADMIN_KEY, through the command line's one client (``cli_http``).
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ridethrough.cli_http import call
from ridethrough.health.incident_model import human_duration

DEFAULT_URL = "http://127.0.0.1:8080"
STYLE = {"operational": "green", "degraded_performance": "yellow", "partial_outage": "dark_orange",
         "major_outage": "red", "under_maintenance": "blue"}
INDICATOR_STYLE = {"none": "bold white on green", "minor": "bold black on yellow",
                   "major": "bold white on dark_orange", "critical": "bold white on red"}
url_option = click.option("--url", default=DEFAULT_URL, envvar="RIDETHROUGH_URL", show_default=True,
                          help="Base URL of the running gateway.")


def _console() -> Console:
    # Piped output (scripts, tests) gets a wide console rather than rich's 80 columns.
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def _status(status: str) -> str:
    return f"[{STYLE.get(status, 'white')}]{status.replace('_', ' ')}[/]"


def _time(iso: str | None) -> str:
    if not iso:
        return "—"
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")


def _pct(x: Any) -> str:
    return f"{x * 100:.1f}%" if isinstance(x, (int, float)) else "—"


def _ms(x: Any) -> str:
    if not isinstance(x, (int, float)):
        return "—"
    return f"{x / 1000:.2f}s" if x >= 1000 else f"{x:.0f}ms"


def incidents_table(incidents: list[dict[str, Any]], title: str) -> Table:
    t = Table(title=title, title_justify="left", expand=False)
    for col in ("id", "status", "impact", "name", "started", "lasted", "affected", "saved"):
        t.add_column(col, no_wrap=col != "name")
    for i in incidents:
        rt = i.get("ridethrough") or {}
        t.add_row(i["id"], i["status"], i["impact"], i["name"], _time(i.get("started_at")),
                  human_duration(rt["duration_s"]) if "duration_s" in rt else "—",
                  str(rt.get("requests_affected", "—")), str(rt.get("requests_saved", "—")))
    return t


@click.command("status")
@url_option
def status(url: str) -> None:
    """What a running gateway sees now: routes, providers, their status pages, incidents."""
    console = _console()
    summary = call(url, "/api/v2/summary.json")
    health = call(url, "/api/ridethrough/health.json")
    ind = summary["status"]["indicator"]
    console.print(f" {summary['page']['name']}: {summary['status']['description']} ",
                  style=INDICATOR_STYLE.get(ind, "bold"))
    by_key = {c["key"]: c for c in health["components"]}
    for kind, title in (("route", "Routes"), ("target", "Provider targets")):
        t = Table(title=title, title_justify="left")
        for col in ("name", "status", "requests", "errors", "p50", "p95", "ttft p95", "why"):
            t.add_column(col)
        for c in by_key.values():
            if c["kind"] != kind:
                continue
            w = c.get("window") or {}
            t.add_row(c["name"], _status(c["status"]), str(w.get("requests", 0)),
                      _pct(w.get("error_rate")), _ms(w.get("p50_ms")), _ms(w.get("p95_ms")),
                      _ms(w.get("ttft_p95_ms")), "; ".join(c.get("reasons") or []))
        console.print(t)
    providers = Table(title="Providers", title_justify="left")
    for col in ("provider", "our view", "their status page"):
        providers.add_column(col)
    pages = {p["provider"]: p for p in health.get("provider_status_pages", [])}
    for c in by_key.values():
        if c["kind"] != "provider":
            continue
        page = pages.get(c["name"])
        theirs = "not watched"
        if page is not None:
            theirs = (f"unreachable ({page['error']})" if not page["ok"]
                      else f"{page.get('description') or page['indicator']}"
                           + (f" — {page['text']}" if page["problem"] else ""))
        providers.add_row(c["name"], _status(c["status"]), theirs)
    console.print(providers)
    merged = health.get("latency_all")
    for learned in ([{**merged, "worker": "all"}] if merged else health.get("latency") or []):
        if not learned.get("targets"):
            continue
        who = {None: "this gateway", "all": "all workers"}.get(learned.get("worker"),
                                                             f"worker {learned.get('worker')}")
        lt = Table(title=f"Learned latency ({who})", title_justify="left")
        for col in ("target", "phase", "calls", "p50", "p95", "p99", "timeout now"):
            lt.add_column(col)
        for r in learned["targets"]:
            timeout = r.get("timeout_s")
            lt.add_row(r["target"], r["phase"], str(r["count"]), _ms(r["p50_ms"]), _ms(r["p95_ms"]),
                       _ms(r["p99_ms"]), f"{timeout:g} s" if timeout is not None else "")
        console.print(lt)
        h = learned.get("hedges") or {}
        console.print(f"hedged requests: {h.get('started', 0)} started, {h.get('won', 0)} answered "
                      f"first, {h.get('budget_refused', 0)} held back by the budget")
    workers = health.get("workers")
    if workers is not None:  # `serve --workers N`: one gateway, several processes
        lead = health.get("leader") or {}
        leads = f"worker {lead['worker']} (pid {lead['pid']}) leads" if lead else "no leader yet"
        console.print(f"{sum(1 for w in workers if w['live'])} worker processes; {leads}")
    store = health.get("store") or {}
    if not store.get("ok", True):
        console.print(f"[red]history store unavailable since {_time(store.get('since'))}: "
                      f"{store.get('error')}[/] (requests unaffected)")
    if summary["incidents"]:
        console.print(incidents_table(summary["incidents"], "Open incidents"))
        for i in summary["incidents"]:
            latest = (i.get("incident_updates") or [{}])[0]
            console.print(f"[bold]{i['name']}[/] — {latest.get('status', '')}: {latest.get('body', '')}")
    else:
        console.print("No open incidents.")


@click.group("incidents")
def incidents() -> None:
    """Incidents of a running gateway: list them, add notes and post-mortems."""


@incidents.command("list")
@url_option
@click.option("--open", "open_only", is_flag=True, help="Only unresolved incidents.")
def list_incidents(url: str, open_only: bool) -> None:
    """The 50 most recent incidents (or only the open ones)."""
    path = "/api/v2/incidents/unresolved.json" if open_only else "/api/v2/incidents.json"
    found = call(url, path)["incidents"]
    if not found:
        click.echo("No incidents.")
        return
    _console().print(incidents_table(found, "Incidents"))


@incidents.command("note")
@click.argument("incident_id")
@click.argument("body")
@click.option("--status", type=click.Choice(["investigating", "identified", "monitoring", "resolved"]),
              help="Also move the incident to this status.")
@url_option
def note(incident_id: str, body: str, status: str | None, url: str) -> None:
    """Add an operator's note to INCIDENT_ID's timeline."""
    payload: dict[str, Any] = {"body": body}
    if status:
        payload["status"] = status
    inc = call(url, f"/admin/incidents/{incident_id}/notes", body=payload, admin=True)
    click.echo(f"{inc['id']}: {inc['status']} — note added ({len(inc['incident_updates'])} updates)")


@incidents.command("postmortem")
@click.argument("incident_id")
@click.argument("body", required=False)
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False),
              help="Read the post-mortem from a file (Markdown or text).")
@url_option
def postmortem(incident_id: str, body: str | None, path: str | None, url: str) -> None:
    """Publish a post-mortem for INCIDENT_ID (text argument, --file, or stdin)."""
    if path:
        with open(path, encoding="utf-8") as f:
            body = f.read()
    elif body is None:
        body = sys.stdin.read()
    if not body or not body.strip():
        click.echo("empty post-mortem", err=True)
        sys.exit(2)
    inc = call(url, f"/admin/incidents/{incident_id}/postmortem", body={"body": body}, admin=True)
    click.echo(f"{inc['id']}: {inc['status']} — post-mortem published")
