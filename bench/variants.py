"""The first round of hot-path changes as code: scratch copies of src/, one per change.

batch, cheapstore, ids, asgi, proxy and gc are the first six rows of docs/performance.md →
"Why the hot path looks as it does" (applied since, except cheapstore's file check at most
once a second). Never touches src/. Snapshots it into OUT/base (default /tmp/ridethrough-variants)
and derives one tree per change, plus "allgc" (the six together); then measure each against
the untouched snapshot:

    .venv/bin/python bench/variants.py
    .venv/bin/python bench/ab.py --a-src /tmp/ridethrough-variants/base \\
        --b-src /tmp/ridethrough-variants/allgc

Each variant is a plain text substitution; if src/ has moved on since and a substitution no
longer applies, that variant is skipped with a message (the others are still made).
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Stale(Exception):
    pass


def sub(d: Path, rel: str, old: str, new: str) -> None:
    p = d / "ridethrough" / rel
    s = p.read_text()
    if old not in s:
        raise Stale(f"{rel}: expected text not found (src/ changed since this was written)")
    p.write_text(s.replace(old, new, 1))


def batch(d: Path) -> None:
    """Store answers once per 20 ms, after the response is written: one thread hop."""
    sub(
        d,
        "routing/fallback.py",
        """        self._pool.submit(self._store, req, response)""",
        """        self._batch.append((req, response))
        if len(self._batch) == 1:
            asyncio.get_running_loop().call_later(0.02, self._flush_batch)

    def _flush_batch(self) -> None:
        batch, self._batch = self._batch, []
        self._pool.submit(self._store_many, batch)

    def _store_many(self, batch: list) -> None:
        for req, response in batch:
            self._store(req, response)""",
    )
    sub(
        d,
        "routing/fallback.py",
        """thread_name_prefix="ridethrough-cache")""",
        """thread_name_prefix="ridethrough-cache")
        self._batch: list = []""",
    )


def ids(d: Path) -> None:
    """Request ids from a per-process prefix and a counter: no os.urandom per request."""
    sub(
        d,
        "api/completions.py",
        """def new_request_id() -> str:
    return "req_" + uuid.uuid4().hex[:24]""",
        '''_ID_PREFIX = "req_" + uuid.uuid4().hex[:12]
_ID_COUNTER = __import__("itertools").count()


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):012x}"''',
    )


def proxy(d: Path) -> None:
    """No proxy-headers middleware in uvicorn (ridethrough is not behind a proxy by default)."""
    sub(
        d,
        "server.py",
        """timeout_keep_alive=30,""",
        """timeout_keep_alive=30, proxy_headers=False,""",
    )


def coalesce(d: Path) -> None:
    """One write per upstream read: the frames of one read (and the head) joined."""
    sub(
        d,
        "api/completions.py",
        """        for frame in result.head:
            yield frame
        async for frame in result.tail:""",
        """        if result.head:
            yield b"".join(result.head)
        async for frame in result.tail:""",
    )
    sub(
        d,
        "routing/executor.py",
        """        try:
            while not relay.terminal_seen:""",
        """        finished = False
        try:
            while not relay.terminal_seen:""",
    )
    sub(
        d,
        "routing/executor.py",
        """                for ev in events:
                    for frame in relay.feed(ev):
                        yield frame
            for frame in relay.finish():
                yield frame""",
        """                frames = [f for ev in events for f in relay.feed(ev)]
                if relay.terminal_seen:
                    frames.extend(relay.finish())
                    finished = True
                if frames:
                    yield b"".join(frames)
            if not finished:
                for frame in relay.finish():
                    yield frame""",
    )


def cheapstore(d: Path) -> None:
    """The store's fixed costs off the per-request path: the file check at most once a
    second, the size bound (a COUNT/SUM scan) every 64 stores."""
    sub(
        d,
        "cache/response_cache.py",
        """                db.check_file()
                result = fn(db)""",
        """                now_m = time.monotonic()
                if now_m >= getattr(self, "_next_check", 0.0):
                    db.check_file()
                    self._next_check = now_m + 1.0
                result = fn(db)""",
    )
    sub(
        d,
        "cache/response_cache.py",
        """            db.enforce_limits(self.max_entries, self.max_bytes)""",
        """            self._since_limits = getattr(self, "_since_limits", 0) + 1
            if self._since_limits >= 64:
                self._since_limits = 0
                db.enforce_limits(self.max_entries, self.max_bytes)""",
    )


def asgi(d: Path) -> None:
    """The two hot routes straight from uvicorn to their handler: no Starlette middleware
    stack (ServerErrorMiddleware, ExceptionMiddleware, Router) on the way in and out."""
    sub(
        d,
        "server.py",
        "    app = build_app(gateway=gw)\n",
        "    app = _fast_path(build_app(gateway=gw), gw)\n",
    )
    p = d / "ridethrough" / "server.py"
    p.write_text(p.read_text() + FAST_PATH)


FAST_PATH = '''

def _fast_path(app: Any, gw: Gateway) -> Any:
    """POST /v1/messages and /v1/chat/completions go straight to their handler."""
    from starlette.requests import Request

    from ridethrough.api import completions

    hot = {"/v1/chat/completions": completions.OPENAI, "/v1/messages": completions.ANTHROPIC}

    async def fast(scope: Any, receive: Any, send: Any) -> None:
        dialect = None
        if scope["type"] == "http" and scope["method"] == "POST":
            dialect = hot.get(scope["path"])
        if dialect is None:
            await app(scope, receive, send)
            return
        scope["app"] = app
        response = await completions.handle(gw, Request(scope, receive), dialect)
        await response(scope, receive, send)

    return fast
'''


def gc_tuned(d: Path) -> None:
    """Start-up objects out of the collector's sight (gc.freeze) and fewer young-generation
    collections: per-request garbage is mostly acyclic and freed by refcounting anyway."""
    sub(
        d,
        "server.py",
        """    server, _ = make_server(cfg, host, port)
    server.run()""",
        """    server, _ = make_server(cfg, host, port)
    import gc
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    server.run()""",
    )


VARIANTS: dict[str, list[Callable[[Path], None]]] = {
    "batch": [batch],
    "cheapstore": [cheapstore],
    "ids": [ids],
    "asgi": [asgi],
    "proxy": [proxy],
    "gc": [gc_tuned],
    "coalesce": [coalesce],
    "allgc": [batch, cheapstore, ids, asgi, proxy, gc_tuned],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/ridethrough-variants"))
    ap.add_argument("--keep-base", action="store_true", help="reuse OUT/base (same snapshot)")
    a = ap.parse_args()
    base = a.out / "base"
    if not a.keep_base or not base.exists():
        shutil.rmtree(base, ignore_errors=True)
        shutil.copytree(
            ROOT / "src", base, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
        )
    for name, changes in VARIANTS.items():
        d = a.out / name
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(base, d)
        try:
            for change in changes:
                change(d)
        except Stale as e:
            shutil.rmtree(d)
            print(f"{name}: skipped ({e})")
            continue
        print(f"{name}: {d}")


if __name__ == "__main__":
    main()
