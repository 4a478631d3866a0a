"""Run a gateway on a real loopback socket in a background thread.

The demo, the drills and the test-suite all need "a gateway over there, on a port", driven
by the official SDKs from this thread. This is that, with a clean start and stop.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
import time
from typing import Any

import uvicorn

from ridethrough.app import build_app
from ridethrough.config import Config
from ridethrough.gateway import Gateway
from ridethrough.health.service import HealthService


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GatewayThread:
    def __init__(self, cfg: Config, *, port: int | None = None, gateway: Gateway | None = None,
                 **gateway_kwargs: Any) -> None:
        self.port = port or free_port()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if gateway is None and cfg.server.data_dir is None:
            # A private data dir per harness: no cache or history leaks between runs.
            self._tmp = tempfile.TemporaryDirectory(prefix="ridethrough-")
            cfg = cfg.model_copy(update={"server": cfg.server.model_copy(
                update={"data_dir": self._tmp.name})})
        self.gateway = gateway or Gateway(cfg, **gateway_kwargs)
        self.app = build_app(gateway=self.gateway)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, loop="asyncio",
                                http="httptools", lifespan="on", log_level="warning",
                                access_log=False, timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="ridethrough-gateway", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve())

    def start(self, timeout: float = 60.0) -> GatewayThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("gateway thread exited during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError("gateway did not start")
            time.sleep(0.01)
        return self

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        """Run a coroutine on the gateway's loop (e.g. to poke state safely)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def flush_cache(self, timeout: float = 30.0) -> None:
        """Wait until every answer stored so far is in the cache (stores are batched)."""

        async def flush() -> Any:
            return self.gateway.tiers.flush_now()

        self.call(flush()).result(timeout)

    def blamed(self) -> list[str]:
        """What this gateway now holds against its targets: a breaker that moved, a health
        window that counted a failure, an open incident. Bad input from a client must leave
        this empty (tests/property, bench/fuzz.py)."""

        async def read() -> list[str]:
            gw = self.gateway
            out = []
            for b in gw.board.snapshot():
                if b["state"] != "closed" or b["consecutive_failures"] or b["window_error_rate"] \
                        or b["opened_count"] or b["held_for_s"]:
                    out.append(f"breaker {b['target']}: {b['state']}, last error {b['last_error']}")
            health = gw.health
            if isinstance(health, HealthService):
                health.tick()  # fold what is queued, as the service's own loop would
                now = health.monitor.clock()
                for key, window in health.monitor.windows.items():
                    st = window.stats(now, 1e9)
                    if st.failures:
                        out.append(f"health {key}: {st.failures} failures {st.classes}")
                out.extend(f"incident {subject}" for subject in health.engine.open)
            return out

        return list(self.call(read()))

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> GatewayThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AppThread:
    """An aiohttp app on a loopback port, on its own event loop in a daemon thread: the
    stand-in upstreams of the tests (servers slower, pickier or stranger than the simulator)."""

    def __init__(self, app: Any, **runner_kwargs: Any) -> None:
        self.app = app
        self.runner_kwargs = runner_kwargs
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        from aiohttp import web

        asyncio.set_event_loop(self.loop)
        self.runner = web.AppRunner(self.app, **self.runner_kwargs)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = self.runner.addresses[0][1]
        self._ready.set()
        self.loop.run_forever()

    def start(self) -> AppThread:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def __enter__(self) -> AppThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
