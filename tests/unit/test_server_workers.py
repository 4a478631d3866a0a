"""The pieces of a worker process: its response header, its drain flag, the port it shares."""

from __future__ import annotations

import signal
import socket

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ridethrough.gateway import Gateway
from ridethrough.server import WorkerHeader, _bind, _WorkerServer, reserve_port
from support.health_records import simulated_config


def test_every_response_names_the_worker_that_answered() -> None:
    async def hello(request: object) -> PlainTextResponse:
        return PlainTextResponse("hi", headers={"x-other": "kept"})

    app = WorkerHeader(Starlette(routes=[Route("/", hello)]), "4242")
    with TestClient(app) as client:            # lifespan passes through the wrapper too
        r = client.get("/")
    assert r.text == "hi" and r.headers["x-ridethrough-worker"] == "4242"
    assert r.headers["x-other"] == "kept"


def test_sigterm_marks_the_workers_gateway_draining() -> None:
    gw = Gateway(simulated_config())
    started: list[bool] = []
    server = _WorkerServer(uvicorn.Config(app=None), gw, lambda: started.append(True))
    server.handle_exit(signal.SIGTERM, None)
    assert gw.draining and server.should_exit   # /readyz answers 503 from here on


def test_the_reserved_port_is_shared_by_workers_and_refused_to_others() -> None:
    reservation = reserve_port("127.0.0.1", 0)
    port = reservation.getsockname()[1]
    try:
        a, b = _bind("127.0.0.1", port, listen=True), _bind("127.0.0.1", port, listen=True)
        assert a.getsockname()[1] == b.getsockname()[1] == port   # two workers, one port
        with pytest.raises(OSError):
            reserve_port("127.0.0.1", port)     # another gateway cannot join them
        a.close()
        b.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5)  # no worker listening
    finally:
        reservation.close()
