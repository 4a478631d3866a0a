"""The command line's one HTTP client for a running gateway: public JSON and the admin API.

``ridethrough status``, ``incidents`` and ``admin`` all talk to the gateway the same way:
the admin key from RIDETHROUGH_ADMIN_KEY, ten seconds at most, and on any failure one line
on stderr and a non-zero exit (an operator mid-incident needs the reason, not a traceback).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
import httpx
import orjson

TIMEOUT_S = 10.0


def call(url: str, path: str, *, method: str | None = None, body: Any = None,
         admin: bool = False) -> Any:
    """``method`` defaults to POST with a ``body``, GET without; the answer's JSON."""
    headers = {"accept": "application/json"}
    if admin:
        key = os.environ.get("RIDETHROUGH_ADMIN_KEY")
        if not key:
            click.echo("set RIDETHROUGH_ADMIN_KEY to an admin key of the gateway", err=True)
            sys.exit(2)
        headers["authorization"] = f"Bearer {key}"
    content = None
    if body is not None:
        content = orjson.dumps(body)
        headers["content-type"] = "application/json"
    method = method or ("POST" if body is not None else "GET")
    try:
        r = httpx.request(method, url.rstrip("/") + path, content=content, headers=headers,
                          timeout=TIMEOUT_S)
    except httpx.HTTPError as e:
        click.echo(f"cannot reach {url}: {e}", err=True)
        sys.exit(1)
    if r.status_code >= 400:
        click.echo(f"error {r.status_code} from {url}{path}: {r.text[:500]}", err=True)
        sys.exit(1)
    return orjson.loads(r.content)
