"""Reading a request body: size limit, content type, JSON — each failure a clear 4xx."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from ridethrough.errors import InvalidRequest, RequestTooLarge, UnsupportedMediaType


async def read_limited(request: Request, limit: int, headers: dict[str, str] | None = None) -> bytes:
    """``headers``: the request's headers with lower-case names, if the caller has them."""
    declared = (request.headers if headers is None else headers).get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(f"request body is {declared} bytes; this gateway's limit is {limit}")
    # The ASGI messages read directly: Starlette's ``request.stream()`` generator cost more
    # than the read itself for the one-message bodies of an API call.
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] != "http.request":  # http.disconnect: the client is gone
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"request body exceeds this gateway's limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def read_json(request: Request, limit: int, headers: dict[str, str] | None = None) -> Any:
    ctype = (request.headers if headers is None else headers).get("content-type", "")
    media = ctype.split(";", 1)[0].strip().lower()
    if media not in ("application/json", "") and not media.endswith("+json"):
        raise UnsupportedMediaType(f"content-type must be application/json, got {media!r}")
    raw = await read_limited(request, limit, headers)
    if not raw:
        raise InvalidRequest("request body is empty; expected a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise InvalidRequest(f"request body is not valid JSON: {e}") from None
