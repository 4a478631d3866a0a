"""The systems under test: how each is configured, started, reached, and measured for memory.

Every gateway gets the same route and fallback — primary on mock port 1, secondary on mock
port 2, for both API formats — and the same per-attempt timeout, so the outage runs compare
like with like:

  route gpt-4.1            OpenAI format: primary → secondary
  route claude-sonnet-4-5  Anthropic format: primary → secondary
  per-attempt timeout      ATTEMPT_TIMEOUT_S (connect, first byte, whole answer)
  retries                  each gateway's documented knob, where it has one (see below)

"direct" is the mock itself (port 1): the baseline every overhead is measured against.
Processes are started with their output in the run folder and stopped by their own pid.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS = BENCH / ".peers"
ATTEMPT_TIMEOUT_S = 5
ADMIN_KEY = "bench-admin-key"
MODELS = {"openai": "gpt-4.1", "anthropic": "claude-sonnet-4-5"}
PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def body(fmt: str, stream: bool) -> bytes:
    """The request every measurement sends: a short chat turn, like most real traffic."""
    obj: dict = {
        "model": MODELS[fmt],
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
    }
    if stream:
        obj["stream"] = True
    return json.dumps(obj).encode()


@dataclass
class Proc:
    """A started process, stopped by its own pid (and its process group, which it leads)."""

    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(5)

    def cpu_s(self) -> float:
        """User + system CPU seconds of the process and its descendants so far."""
        total = 0.0
        for pid in [self.pid, *_descendants(self.pid)]:
            try:
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
            except (OSError, IndexError, ValueError):
                pass
        return total

    def rss_mb(self) -> float:
        """Resident memory of the process and its descendants, MB."""
        total = 0
        for pid in [self.pid, *_descendants(self.pid)]:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for k in kids:
        out.append(int(k))
        out.extend(_descendants(int(k)))
    return out


def spawn(
    name: str,
    argv: list[str],
    run_dir: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Proc:
    log = run_dir / f"{name}.log"
    with open(log, "ab") as f:
        p = subprocess.Popen(
            argv,
            stdout=f,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    return Proc(name, p, log)


def wait_http(url: str, proc: Proc, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited during start-up; see {proc.log}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status < 500:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} not ready after {timeout:.0f} s; see {proc.log}")


@dataclass
class Mock:
    proc: Proc
    primary: int
    secondary: int

    def admin(self, port: int, path: str, method: str = "POST", *, via: int | None = None) -> dict:
        """``via``: send it to that port of the mock instead, for ``port`` (a port whose fault
        is ``no_accept`` cannot be reached itself)."""
        if via is not None and via != port:
            path += ("&" if "?" in path else "?") + f"port={port}"
            port = via
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=b"")
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def fault(self, mode: str, port: int | None = None, *, via: int | None = None) -> None:
        self.admin(port or self.primary, f"/__admin/fault?mode={mode}", via=via)

    def stats(self, port: int, *, via: int | None = None) -> dict:
        return self.admin(port, "/__admin/stats", "GET", via=via)

    def reset(self) -> None:
        for port in (self.primary, self.secondary):
            self.admin(port, "/__admin/fault?mode=none")
            self.admin(port, "/__admin/reset")


def start_mock(
    run_dir: Path,
    python: str,
    *,
    first_token_ms: float,
    token_interval_ms: float,
    tokens: int = 16,
    json_delay_ms: float = 0.0,
    jitter: float = 0.0,
    name: str = "mock",
) -> Mock:
    ready = run_dir / f"{name}.ports"
    ready.unlink(missing_ok=True)
    p1, p2 = free_port(), free_port()
    proc = spawn(
        name,
        [
            python,
            str(BENCH / "mock_upstream.py"),
            "--port",
            str(p1),
            "--port",
            str(p2),
            "--tokens",
            str(tokens),
            "--first-token-ms",
            str(first_token_ms),
            "--token-interval-ms",
            str(token_interval_ms),
            "--json-delay-ms",
            str(json_delay_ms),
            "--jitter",
            str(jitter),
            "--ready-file",
            str(ready),
        ],
        run_dir,
    )
    deadline = time.monotonic() + 10
    while not ready.exists():
        if not proc.alive() or time.monotonic() > deadline:
            raise RuntimeError(f"mock upstream did not start; see {proc.log}")
        time.sleep(0.05)
    return Mock(proc, p1, p2)


@dataclass
class Gateway:
    """How to reach one system under test, per API format."""

    name: str
    port: int
    proc: Proc | None = None
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # per format

    def url(self, fmt: str) -> str:
        return f"http://127.0.0.1:{self.port}{PATHS[fmt]}"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


CLIENT_HEADERS = {
    "openai": {"authorization": "Bearer bench"},
    "anthropic": {"x-api-key": "bench", "anthropic-version": "2023-06-01"},
}


def direct(mock: Mock) -> Gateway:
    return Gateway("direct", mock.primary, None, dict(CLIENT_HEADERS))


# -- ridethrough -----------------------------------------------------------------------------


def ridethrough_config(
    mock: Mock, data_dir: Path, *, cache: str | None = None, default_timeouts: bool = False
) -> str:
    """The config of the issue, plus a secondary for the Anthropic route, the shared
    per-attempt timeout (none with ``default_timeouts``: ridethrough's own), and an admin
    key (to read breaker states)."""
    t = ATTEMPT_TIMEOUT_S
    timeouts = {"connect": t, "first_byte": t, "first_token": t, "idle": t, "total": t}

    def provider(kind: str, port: int, **extra: str) -> dict:
        base = f"http://127.0.0.1:{port}" + ("/v1" if kind == "openai-compatible" else "")
        p: dict = {"kind": kind, "base_url": base, **extra}
        if not default_timeouts:
            p["timeouts"] = timeouts
        return p

    def route(*targets: tuple[str, str]) -> dict:
        r: dict = {"targets": [{"provider": p, "model": m} for p, m in targets]}
        if cache:
            r["cache"] = {"mode": cache}
        return r

    cfg = {
        "server": {
            "access_log": False,
            "data_dir": str(data_dir),
            "admin_keys": [
                {"name": "bench", "sha256": hashlib.sha256(ADMIN_KEY.encode()).hexdigest()}
            ],
        },
        "providers": {
            "primary": provider("openai-compatible", mock.primary),
            "secondary": provider("openai-compatible", mock.secondary),
            "claude": provider("anthropic", mock.primary, api_key_env="BENCH_KEY"),
            "claude-secondary": provider("anthropic", mock.secondary, api_key_env="BENCH_KEY"),
        },
        "routes": {
            "gpt-4.1": route(("primary", "gpt-4.1"), ("secondary", "gpt-4.1")),
            "claude-sonnet-4-5": route(
                ("claude", "claude-sonnet-4-5"), ("claude-secondary", "claude-sonnet-4-5")
            ),
        },
    }
    # JSON is YAML: no YAML library needed to write it, and ridethrough reads it as usual.
    return "# Written by bench/gateways.py for one benchmark run.\n" + json.dumps(cfg, indent=2)


def start_ridethrough(
    mock: Mock,
    run_dir: Path,
    *,
    cache: str | None = None,
    name: str = "ridethrough",
    src: Path | None = None,
    default_timeouts: bool = False,
) -> Gateway:
    """``src``: run ridethrough from another source tree (a scratch copy with a change to
    measure) instead of the installed one; it goes first on PYTHONPATH."""
    data = run_dir / f"{name}-data"
    data.mkdir(exist_ok=True)
    cfg = run_dir / f"{name}.yaml"
    cfg.write_text(ridethrough_config(mock, data, cache=cache, default_timeouts=default_timeouts))
    port = free_port()
    exe = ROOT / ".venv" / "bin" / "python"
    py = str(exe) if exe.exists() else sys.executable
    proc = spawn(
        name,
        [
            py,
            "-m",
            "ridethrough",
            "serve",
            "--config",
            str(cfg),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        run_dir,
        env={"BENCH_KEY": "bench", **({"PYTHONPATH": str(src)} if src else {})},
    )
    wait_http(f"http://127.0.0.1:{port}/healthz", proc, 30)
    return Gateway(name, port, proc, dict(CLIENT_HEADERS))


def ridethrough_breakers(gw: Gateway) -> list[dict]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{gw.port}/admin/breakers",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        return list(json.loads(r.read())["targets"])


# -- LiteLLM ---------------------------------------------------------------------------------

LITELLM_ENV = {
    # Never reach for the remote cost map (there is no internet here, and it must not try).
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOG": "ERROR",
    "LITELLM_TELEMETRY": "False",
    "DISABLE_SCHEMA_UPDATE": "True",
}


def litellm_config(mock: Mock) -> str:
    t = ATTEMPT_TIMEOUT_S
    rows = []
    for name, model, base in (
        ("gpt-4.1", "openai/gpt-4.1", f"http://127.0.0.1:{mock.primary}/v1"),
        ("gpt-4.1-secondary", "openai/gpt-4.1", f"http://127.0.0.1:{mock.secondary}/v1"),
        ("claude-sonnet-4-5", "anthropic/claude-sonnet-4-5", f"http://127.0.0.1:{mock.primary}"),
        (
            "claude-sonnet-4-5-secondary",
            "anthropic/claude-sonnet-4-5",
            f"http://127.0.0.1:{mock.secondary}",
        ),
    ):
        rows.append(
            f"  - model_name: {name}\n    litellm_params: {{model: {model}, "
            f'api_base: "{base}", api_key: bench, timeout: {t}, stream_timeout: {t}}}'
        )
    return (
        "# Written by bench/gateways.py for one benchmark run.\nmodel_list:\n"
        + "\n".join(rows)
        + """
router_settings:
  # LiteLLM's documented reliability settings: retries, cooldown after failures, fallbacks.
  num_retries: 2
  allowed_fails: 3
  cooldown_time: 15
  fallbacks:
    - {"gpt-4.1": ["gpt-4.1-secondary"]}
    - {"claude-sonnet-4-5": ["claude-sonnet-4-5-secondary"]}
litellm_settings:
  telemetry: false
  drop_params: true
general_settings:
  # No auth on any gateway in this benchmark (ridethrough runs without gateway keys too).
  dangerously_permit_weak_or_unset_master_key: true
"""
    )


LITELLM_LOG_CONFIG = {
    # Like ridethrough's `access_log: false`: no line per request on any gateway.
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"err": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "uvicorn": {"handlers": ["err"], "level": "WARNING"},
        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}


def litellm_available() -> bool:
    return (PEERS / "litellm-venv" / "bin" / "litellm").exists()


def start_litellm(mock: Mock, run_dir: Path) -> Gateway:
    cfg = run_dir / "litellm.yaml"
    cfg.write_text(litellm_config(mock))
    logcfg = run_dir / "litellm-logging.json"
    logcfg.write_text(json.dumps(LITELLM_LOG_CONFIG))
    port = free_port()
    proc = spawn(
        "litellm",
        [
            str(PEERS / "litellm-venv" / "bin" / "litellm"),
            "--config",
            str(cfg),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
            "--log_config",
            str(logcfg),
        ],
        run_dir,
        env=LITELLM_ENV,
        cwd=run_dir,
    )
    wait_http(f"http://127.0.0.1:{port}/health/liveliness", proc, 90)
    return Gateway("litellm", port, proc, dict(CLIENT_HEADERS))


# -- Portkey ---------------------------------------------------------------------------------

PORTKEY_JS = (
    PEERS / "portkey" / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
)


def portkey_available() -> bool:
    """Installed, and patched to listen on loopback only (bench/setup.sh): else skipped."""
    return PORTKEY_JS.exists() and 'hostname:"127.0.0.1"' in PORTKEY_JS.read_text()


def portkey_config(mock: Mock, fmt: str) -> str:
    """Portkey takes its route per request, in the x-portkey-config header."""
    provider = "openai" if fmt == "openai" else "anthropic"
    targets = [
        {
            "provider": provider,
            "api_key": "bench",
            "custom_host": f"http://127.0.0.1:{port}/v1",
            "request_timeout": ATTEMPT_TIMEOUT_S * 1000,
        }
        for port in (mock.primary, mock.secondary)
    ]
    # Portkey's documented reliability settings: retry the primary, then fall back.
    targets[0]["retry"] = {"attempts": 2}
    return json.dumps({"strategy": {"mode": "fallback"}, "targets": targets}, separators=(",", ":"))


def start_portkey(mock: Mock, run_dir: Path) -> Gateway:
    port = free_port()
    proc = spawn(
        "portkey",
        ["node", str(PORTKEY_JS), f"--port={port}", "--headless"],
        run_dir,
        env={"NODE_ENV": "production"},
        cwd=PEERS / "portkey",
    )
    wait_http(f"http://127.0.0.1:{port}/", proc, 30)
    headers = {
        fmt: {**CLIENT_HEADERS[fmt], "x-portkey-config": portkey_config(mock, fmt)}
        for fmt in ("openai", "anthropic")
    }
    return Gateway("portkey", port, proc, headers)


STARTERS = {"ridethrough": start_ridethrough, "litellm": start_litellm, "portkey": start_portkey}


def versions() -> dict[str, str]:
    """Versions of everything measured, for the report."""

    def cmd(argv: list[str], env: dict[str, str] | None = None) -> str:
        try:
            out = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                env={**os.environ, **(env or {})},
            )
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "not installed"

    py = str(ROOT / ".venv" / "bin" / "python")
    v = {
        "python": cmd([py, "-c", "import sys; print(sys.version.split()[0])"]),
        "ridethrough": cmd(
            [py, "-c", "import importlib.metadata as m; print(m.version('ridethrough'))"]
        ),
        "uvicorn/starlette/aiohttp": cmd(
            [
                py,
                "-c",
                (
                    "import importlib.metadata as m; "
                    "print('/'.join(m.version(p) for p in ('uvicorn','starlette','aiohttp')))"
                ),
            ]
        ),
        "node": cmd(["node", "--version"]),
        "wrk": cmd(["wrk", "--version"]).split(" Copyright")[0] if _has("wrk") else "not installed",
    }
    lp = PEERS / "litellm-venv" / "bin" / "python"
    v["litellm"] = (
        cmd(
            [str(lp), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
            LITELLM_ENV,
        )
        if lp.exists()
        else "not installed"
    )
    pj = PEERS / "portkey" / "node_modules" / "@portkey-ai" / "gateway" / "package.json"
    v["portkey"] = json.loads(pj.read_text())["version"] if pj.exists() else "not installed"
    return v


def _has(exe: str) -> bool:
    from shutil import which

    return which(exe) is not None


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram_gib": f"{mem_kb / 1024 / 1024:.1f}",
        "kernel": os.uname().release,
    }


def loadavg() -> str:
    """1/5/15-minute load averages: other work on the machine shows up here."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"
