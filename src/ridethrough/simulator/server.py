"""A fake Anthropic + OpenAI provider on a real loopback socket.

The gateway's failover only matters when a provider fails, and real providers fail in
ways a mocked HTTP client cannot express: refused ports, TCP resets, hung connections,
errors inside a 200 stream. This server speaks both APIs byte-for-byte (see the
``*_wire`` modules) and lets a test, drill or demo switch a ``Fault`` on and off while it
runs, from any thread or over ``/_sim`` admin HTTP.

The admin API is also served on a second port (``admin_url``) that stays open while
the main port is refusing or ignoring connections, so an out-of-process drill can end a
REFUSE or a NO_ACCEPT.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from . import anthropic_wire, openai_wire
from .answers import compose_answer
from .delivery import Delivery, json_response
from .faults import PRE_RESPONSE_KINDS, Fault, FaultKind, FaultSwitch
from .ids import IdMint
from .stats import RecordedRequest, SimStats
from .wire import Wire, WireError

__all__ = ["DEFAULT_MODELS", "SimulatorServer", "run_simulator"]

DEFAULT_MODELS = [
    "claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-7",
    "gpt-4o", "gpt-4o-mini", "text-embedding-3-small",
]
SHUTDOWN_TIMEOUT_S = 1.0  # how long stop() lets in-flight handlers finish
LISTEN_BACKLOG = 256
RECORDED_REQUESTS = 100

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SimulatorServer:
    """Both provider APIs on one loopback port, plus an always-open admin port.

    ``token_delay_s`` paces streamed tokens (and delays a JSON answer by tokens × delay);
    ``api_key`` turns on key checking; ``models`` limits the served models (others get a
    404); ``clock`` and ``seed`` drive fault rates and ramps, and the answers' wording.
    """

    def __init__(
        self,
        name: str = "sim",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token_delay_s: float = 0.002,
        api_key: str | None = None,
        models: list[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        seed: int = 0,
        admin_port: int = 0,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.admin_port = admin_port
        self.token_delay_s = token_delay_s
        self.api_key = api_key
        self.models = list(models) if models is not None else None
        self.seed = seed
        self.stats = SimStats()
        self.last_requests: deque[RecordedRequest] = deque(maxlen=RECORDED_REQUESTS)
        self._faults = FaultSwitch(clock=clock, seed=seed)
        ids = IdMint(seed)
        self._anthropic = anthropic_wire.AnthropicWire(ids)
        self._openai = openai_wire.OpenAIWire(ids)
        self._served = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._admin_runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._admin_listener: asyncio.Server | None = None
        self._opening: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None
        self._delivery: Delivery | None = None
        self._sparing: object | None = None  # the admin connection a REFUSE must not drop
        self._silence: _Silence | None = None  # the never-accepting port of a NO_ACCEPT

    # -- addresses ----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The Anthropic SDK's base URL; the OpenAI SDK's is ``base_url + "/v1"``."""
        return f"http://{_host_for_url(self.host)}:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://{_host_for_url(self.host)}:{self.admin_port}"

    # -- lifecycle (caller's loop) --------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._delivery = Delivery(self._stopping, self.token_delay_s)
        self._runner = web.AppRunner(self._api_app(), handler_cancellation=True,
                                     shutdown_timeout=SHUTDOWN_TIMEOUT_S, access_log=None)
        self._admin_runner = web.AppRunner(self._admin_app(), shutdown_timeout=SHUTDOWN_TIMEOUT_S,
                                           access_log=None)
        await self._runner.setup()
        await self._admin_runner.setup()
        admin_sock = _listen_socket(self.host, self.admin_port)
        self.admin_port = admin_sock.getsockname()[1]
        assert self._admin_runner.server is not None
        self._admin_listener = await self._loop.create_server(
            self._admin_runner.server, sock=admin_sock)
        # Bind now even if a REFUSE (or NO_ACCEPT) is already set, so ``port`` is known
        # (and stays fixed).
        sock = _listen_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        if self._faults.port_fault is None:
            await self._open_listener(sock)
        else:
            sock.close()
            await self._reconcile_and_wait()

    async def stop(self) -> None:
        if self._runner is None or self._stopping is None:
            return
        self._stopping.set()  # wakes every parked (hanging) handler
        if self._opening is not None:
            self._opening.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await self._opening
        for listener in (self._listener, self._admin_listener):
            if listener is not None:
                listener.close()
        self._listener = self._admin_listener = None
        if self._silence is not None:
            self._silence.close()
            self._silence = None
        await self._runner.cleanup()
        if self._admin_runner is not None:
            await self._admin_runner.cleanup()
        self._runner = self._admin_runner = None

    # -- lifecycle (own thread) -----------------------------------------------------------

    def start_in_thread(self) -> None:
        """Run on a private event loop in a daemon thread (sync tests, the demo)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name=f"simulator-{self.name}", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]

    def stop_thread(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if not loop.is_closed():
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = None

    # -- faults -------------------------------------------------------------------------

    def set_fault(self, fault: Fault | None) -> None:
        """Switch the fault (None = healthy). Safe from any thread; when it returns, a
        REFUSE has closed the port, a NO_ACCEPT has silenced it (or a cleared one has
        re-opened it on the same port)."""
        self._faults.set(fault)
        loop = self._loop
        if loop is None or self._runner is None or loop.is_closed():
            return
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._reconcile_listener()  # re-opening finishes on the next loop turn
        else:
            asyncio.run_coroutine_threadsafe(self._reconcile_and_wait(), loop).result(10)

    def clear_faults(self) -> None:
        self.set_fault(None)

    @property
    def fault(self) -> Fault | None:
        return self._faults.current

    def reset(self) -> None:
        """Healthy again, counters and recorded requests emptied."""
        self.clear_faults()
        self.stats.reset()
        self.last_requests.clear()

    def _reconcile_listener(self) -> None:
        """Make the port match the fault: closed while REFUSE, silent (a listener that
        never accepts, its queue full) while NO_ACCEPT, else open and served."""
        assert self._loop is not None and self._runner is not None
        stopping = self._stopping is not None and self._stopping.is_set()
        port_fault = self._faults.port_fault
        want_open = port_fault is None and not stopping
        want_silent = port_fault is FaultKind.NO_ACCEPT and not stopping
        if not want_open and self._listener is not None:
            self._listener.close()
            self._listener = None
            # A dead provider has no live connections either: drop them all, in-flight
            # ones included (like a crashed process), except the admin request that
            # asked for this, so pooled clients cannot keep talking to a "down" port.
            if self._runner.server is not None:
                for conn in self._runner.server.connections:
                    if conn is not self._sparing:
                        conn.force_close()
        if not want_silent and self._silence is not None:
            self._silence.close()  # frees the port for the listener (or for nothing)
            self._silence = None
        if self._opening is not None:
            return  # it reconciles again when it is done
        if want_open and self._listener is None:
            self._opening = self._loop.create_task(self._open_listener())
        elif want_silent and self._silence is None:
            self._opening = self._loop.create_task(self._open_silence())

    async def _open_listener(self, sock: socket.socket | None = None) -> None:
        assert self._loop is not None and self._runner is not None
        try:
            if sock is None:
                sock = await self._bind(LISTEN_BACKLOG)
            assert self._runner.server is not None
            try:
                self._listener = await self._loop.create_server(self._runner.server, sock=sock)
            except BaseException:
                sock.close()
                raise
        finally:
            self._opening = None
        self._reconcile_listener()  # a REFUSE may have arrived while we were opening

    async def _open_silence(self) -> None:
        assert self._loop is not None
        try:
            silence = _Silence(await self._bind(_Silence.BACKLOG))
            try:
                await silence.fill(self._loop, self.host, self.port)
            except BaseException:
                silence.close()
                raise
            self._silence = silence
        finally:
            self._opening = None
        self._reconcile_listener()  # the fault may have changed while we were filling

    async def _bind(self, backlog: int) -> socket.socket:
        for attempt in range(50):  # the port may linger briefly after it was closed
            try:
                return _listen_socket(self.host, self.port, backlog)
            except OSError:
                if attempt == 49:
                    raise
                await asyncio.sleep(0.02)
        raise AssertionError("unreachable")

    async def _reconcile_and_wait(self) -> None:
        self._reconcile_listener()
        await self._settled()

    async def _settled(self) -> None:
        """Wait until the port matches the fault (one opening may lead to another)."""
        while self._opening is not None:
            await asyncio.shield(self._opening)

    # -- apps -----------------------------------------------------------------------------

    def _api_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        route = self._api_route
        app.router.add_post("/v1/messages", route("/v1/messages", self._chat))
        app.router.add_post("/v1/messages/count_tokens",
                            route("/v1/messages/count_tokens", self._count_tokens))
        app.router.add_post("/v1/chat/completions",
                            route("/v1/chat/completions", self._chat))
        app.router.add_get("/v1/models", route("/v1/models", self._models))
        app.router.add_post("/v1/embeddings", route("/v1/embeddings", self._embeddings))
        self._add_admin_routes(app)
        return app

    def _admin_app(self) -> web.Application:
        app = web.Application()
        self._add_admin_routes(app)
        return app

    def _add_admin_routes(self, app: web.Application) -> None:
        app.router.add_post("/_sim/fault", self._admin_set_fault)
        app.router.add_delete("/_sim/fault", self._admin_clear_fault)
        app.router.add_get("/_sim/fault", self._admin_get_fault)
        app.router.add_get("/_sim/stats", self._admin_stats)
        app.router.add_post("/_sim/reset", self._admin_reset)

    # -- the request pipeline ---------------------------------------------------------------

    def _api_route(self, path: str, endpoint: EndpointHandler) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._handle_api(request, path, endpoint)
        return handle

    async def _handle_api(self, request: web.Request, path: str,
                          endpoint: EndpointHandler) -> web.StreamResponse:
        assert self._delivery is not None
        delivery = self._delivery
        body = await request.read()
        self.last_requests.append(RecordedRequest(
            path=request.path, headers={k.lower(): v for k, v in request.headers.items()},
            body=body, method=request.method, query=request.query_string,
        ))
        model = _peek_model(body)
        self.stats.record_request(path, model)
        wire: Wire = self._anthropic if _is_anthropic(path, request) else self._openai
        request_id = wire.new_request_id()
        self._served += 1

        port_fault = self._faults.port_fault
        if port_fault is not None:  # a request on a connection opened before the port went
            self.stats.record_outcome(str(port_fault))  # down (REFUSE or NO_ACCEPT)
            return await delivery.reset(request)

        fault = self._faults.decide(model, wire.format)
        limited = fault is not None and fault.kind is FaultKind.HTTP_ERROR and fault.status == 429
        headers = wire.response_headers(request_id, self._served, limited=limited)
        if fault is not None and fault.kind in PRE_RESPONSE_KINDS:
            self.stats.record_outcome(str(fault.kind))
            if fault.kind is FaultKind.HTTP_ERROR:
                return delivery.http_error(wire, fault, headers, request_id)
            if fault.kind is FaultKind.RESET:
                return await delivery.reset(request)
            return await delivery.hold(request)

        try:
            self._check_api_key(request, wire)
            try:
                exchange = endpoint(wire, body, request)
            except WireError:
                raise
            except Exception as exc:  # input the checks let through: a provider says 400, not 500
                raise WireError(400, f"Invalid request ({type(exc).__name__})") from exc
            if exchange.model is not None and self.models is not None \
                    and exchange.model not in self.models:
                raise _model_not_found(wire, exchange.model)
        except WireError as err:
            self.stats.record_outcome(err.outcome)
            error = wire.error_body(err.status, request_id=request_id, error_type=err.error_type,
                                    code=err.error_code, message=err.message, param=err.param)
            return json_response(error, status=err.status, headers=headers)

        self.stats.record_outcome(str(fault.kind) if fault is not None else "ok")
        if exchange.stream is not None:
            return await delivery.stream(request, wire, exchange.stream(), headers, fault)
        return await delivery.json(request, wire, exchange.body(), headers, fault,
                                   exchange.output_tokens, request_id)

    def _check_api_key(self, request: web.Request, wire: Wire) -> None:
        if self.api_key is None:
            return
        given = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = given or auth[7:].strip()
        if given != self.api_key:
            raise WireError(401, "invalid x-api-key" if wire.format == "anthropic" else
                            "Incorrect API key provided. You can find your API key at "
                            "https://platform.openai.com/account/api-keys.",
                            outcome="authentication_error")

    # -- endpoints: each turns a request into an Exchange (or raises WireError) ------------

    def _chat(self, wire: Wire, body: bytes, request: web.Request) -> Exchange:
        conv = wire.parse(body)
        answer = compose_answer(conv, sim_name=self.name, seed=self.seed,
                                preamble_with_tools=wire.preamble_with_tools)
        # Rendered here, not when sent, so anything odd in the request is still a 400.
        if conv.stream:
            frames = wire.stream_frames(conv, answer)
            return Exchange(conv.model, stream=lambda: frames)
        rendered = wire.response_body(conv, answer)
        return Exchange(conv.model, body=lambda: rendered, output_tokens=answer.output_tokens)

    def _count_tokens(self, wire: Wire, body: bytes, request: web.Request) -> Exchange:
        conv = self._anthropic.parse(body, require_max_tokens=False)
        return Exchange(conv.model, body=lambda: anthropic_wire.count_tokens_body(conv))

    def _models(self, wire: Wire, body: bytes, request: web.Request) -> Exchange:
        models = self.models if self.models is not None else DEFAULT_MODELS
        if wire.format == "anthropic":
            return Exchange(None, body=lambda: anthropic_wire.models_page(models))
        return Exchange(None, body=lambda: openai_wire.models_list(models))

    def _embeddings(self, wire: Wire, body: bytes, request: web.Request) -> Exchange:
        data = openai_wire.load_object(body)
        result = openai_wire.embeddings_body(data)
        return Exchange(result["model"], body=lambda: result)

    # -- admin ----------------------------------------------------------------------------

    async def _admin_set_fault(self, request: web.Request) -> web.Response:
        try:
            fault = Fault.from_dict(orjson.loads(await request.read()))
        except (ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
            return json_response({"error": str(exc)}, status=400, headers={})
        self._sparing = request.protocol
        try:
            self.set_fault(fault)
        finally:
            self._sparing = None
        await self._settled()
        return json_response({"fault": fault.to_dict()}, status=200, headers={})

    async def _admin_clear_fault(self, request: web.Request) -> web.Response:
        self.clear_faults()
        await self._settled()
        return json_response({"fault": None}, status=200, headers={})

    async def _admin_get_fault(self, request: web.Request) -> web.Response:
        fault = self._faults.current
        return json_response({"fault": fault.to_dict() if fault else None}, status=200, headers={})

    async def _admin_stats(self, request: web.Request) -> web.Response:
        fault = self._faults.current
        body = {**self.stats.to_dict(), "name": self.name,
                "fault": fault.to_dict() if fault else None}
        return json_response(body, status=200, headers={})

    async def _admin_reset(self, request: web.Request) -> web.Response:
        self.reset()
        await self._settled()
        return json_response({"ok": True}, status=200, headers={})


class Exchange:
    """A validated request: its model, and how to render the answer (JSON or frames)."""

    __slots__ = ("body", "model", "output_tokens", "stream")

    def __init__(self, model: str | None, *, body: Callable[[], dict[str, Any]] | None = None,
                 stream: Callable[[], list[Any]] | None = None, output_tokens: int = 0) -> None:
        self.model = model
        self.body = body or dict
        self.stream = stream
        self.output_tokens = output_tokens


EndpointHandler = Callable[[Wire, bytes, web.Request], Exchange]


def run_simulator(host: str, port: int, name: str, token_delay_s: float, *,
                  admin_port: int = 0, api_key: str | None = None) -> None:
    """Serve until SIGINT/SIGTERM (the ``ridethrough simulate`` command)."""

    async def main() -> None:
        server = SimulatorServer(name, host=host, port=port, token_delay_s=token_delay_s,
                                 api_key=api_key, admin_port=admin_port)
        await server.start()
        print(f"simulator {name!r}: Anthropic base {server.base_url}  "
              f"OpenAI base {server.base_url}/v1  admin {server.admin_url}/_sim", flush=True)
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, done.set)
        try:
            await done.wait()
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


def _model_not_found(wire: Wire, model: str) -> WireError:
    if wire.format == "anthropic":
        return WireError(404, f"model: {model}", outcome="not_found")
    return WireError(404, f"The model `{model}` does not exist or you do not have access to it.",
                     code="model_not_found", outcome="not_found")


def _is_anthropic(path: str, request: web.Request) -> bool:
    if path.startswith("/v1/messages"):
        return True
    if path == "/v1/models":
        return "anthropic-version" in request.headers
    return False


def _peek_model(body: bytes) -> str | None:
    """The model named in a JSON body, for counting and partial outages, before validation."""
    if not body:
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    model = data.get("model") if isinstance(data, dict) else None
    return model if isinstance(model, str) else None


def _listen_socket(host: str, port: int, backlog: int = LISTEN_BACKLOG) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class _Silence:
    """The port of a provider that stopped answering: a listener nobody accepts from,
    its accept queue filled by connections of its own. The kernel drops every further
    SYN, so a client's connect() retransmits until its own connect timeout ("Connection
    timed out", where a closed port answers ECONNREFUSED at once)."""

    BACKLOG = 1  # not 0: with 0, Linux also counts the SYN queue as full and sends cookies
    MAX_FILLERS = 4
    FILLER_CONNECT_TIMEOUT_S = 1.0  # a loopback handshake takes microseconds

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fillers: list[socket.socket] = []

    async def fill(self, loop: asyncio.AbstractEventLoop, host: str, port: int) -> None:
        """Connect to the listener until its accept queue is full (Linux tells; elsewhere
        BACKLOG + 1 connections are taken to fill it)."""
        target = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
        family = socket.AF_INET6 if ":" in target else socket.AF_INET
        while True:
            full = _accept_queue_full(self.sock)
            if full or (full is None and len(self.fillers) > self.BACKLOG):
                return
            if len(self.fillers) >= self.MAX_FILLERS:
                raise RuntimeError(f"no_accept: the accept queue of port {port} did not fill")
            filler = socket.socket(family, socket.SOCK_STREAM)
            filler.setblocking(False)
            self.fillers.append(filler)
            try:
                await asyncio.wait_for(loop.sock_connect(filler, (target, port)),
                                       self.FILLER_CONNECT_TIMEOUT_S)
            except TimeoutError:
                # The queue filled up under us (the previous filler's handshake landed
                # late, or a client raced in): this filler's SYN was dropped, as intended.
                filler.close()
                self.fillers.remove(filler)
                if _accept_queue_full(self.sock) is False:
                    raise
                return

    def close(self) -> None:
        for filler in self.fillers:
            filler.close()
        self.fillers.clear()
        self.sock.close()  # the queued connections go with it (reset)


# struct tcp_info (linux/tcp.h) opens with eight one-byte fields, then __u32 rto, ato,
# snd_mss, rcv_mss, unacked, sacked. For a listening socket the kernel reports the accept
# queue's length in tcpi_unacked and its limit (the backlog) in tcpi_sacked.
_TCPI_LISTEN_QUEUE = struct.Struct("=II")
_TCPI_LISTEN_QUEUE_OFFSET = 24


def _accept_queue_full(sock: socket.socket) -> bool | None:
    """Whether a listener's accept queue is full (new SYNs dropped); None if unknown."""
    tcp_info = getattr(socket, "TCP_INFO", None)
    if tcp_info is None or not sys.platform.startswith("linux"):
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, tcp_info,
                              _TCPI_LISTEN_QUEUE_OFFSET + _TCPI_LISTEN_QUEUE.size)
    except OSError:
        return None
    if len(raw) < _TCPI_LISTEN_QUEUE_OFFSET + _TCPI_LISTEN_QUEUE.size:
        return None
    queued, limit = _TCPI_LISTEN_QUEUE.unpack_from(raw, _TCPI_LISTEN_QUEUE_OFFSET)
    return queued > limit
