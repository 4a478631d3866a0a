"""Where ridethrough spends a request: py-spy samples of the live server under load.

py-spy (from bench/.peers/tools-venv, never the project's venv) attaches to the running
gateway without restarting or instrumenting it, and samples every stack at a fixed rate
while wrk or the streaming client drives load. The collapsed stacks are folded here into:

  self      the frames that were on top of the stack (where CPU actually burns)
  inclusive the functions anywhere on the stack (what a request's time is spent under)
  areas     the same samples grouped by layer: HTTP server, framework, ridethrough, upstream
            client, JSON, event loop — the shape of one request's cost

py-spy leaves out idle samples (the loop waiting in epoll), so percentages are of busy time
and ``busy_pct`` is the busy samples over those a fully busy process would have given.
Coroutine stacks start at the task being stepped (uvloop's C loop calls it), so "inclusive"
is per await chain, not per whole request.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from gateways import PEERS

PY_SPY = PEERS / "tools-venv" / "bin" / "py-spy"

# The first match (by frame file path) names the layer a self-sample belongs to.
AREAS: list[tuple[str, str]] = [
    ("ridethrough", "/ridethrough/"),
    ("uvicorn (HTTP server)", "/uvicorn/"),
    ("httptools (parser)", "httptools"),
    ("starlette (framework)", "/starlette/"),
    ("aiohttp (upstream client)", "/aiohttp/"),
    ("yarl/multidict (URLs, headers)", "/yarl/"),
    ("yarl/multidict (URLs, headers)", "/multidict/"),
    ("pydantic", "/pydantic"),
    ("asyncio (event loop, tasks)", "/asyncio/"),
    ("uvloop", "uvloop"),
    ("logging", "/logging/"),
]
# The frames every sample sits under (CLI, server start-up, the loop's run call): no signal.
_ROOT_CHAIN = (
    "click/",
    "asyncio/runners.py",
    "uvicorn/server.py",
    "uvicorn/_compat.py",
    "/bin/ridethrough",
    "ridethrough/cli.py",
    "ridethrough/server.py",
    "runpy.py",
    "ridethrough/__main__.py",
    "threading.py",
)
# Leaf frames of a thread that is only waiting (py-spy cannot always tell it is idle).
IDLE_LEAVES = (
    ("_worker", "concurrent/futures/thread.py"),
    ("wait", "threading.py"),
    ("select", "selectors.py"),
)
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def available() -> bool:
    return PY_SPY.exists()


def record(pid: int, seconds: float, out: Path, rate: int = 250) -> Path:
    """Sample ``pid`` for ``seconds`` into ``out`` (collapsed stacks, one per line)."""
    subprocess.run(
        [
            str(PY_SPY),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
            "--full-filenames",
        ],
        check=True,
        capture_output=True,
        timeout=seconds + 60,
    )
    return out


def record_during(pid: int, seconds: float, out: Path, load: Any) -> Path:
    """Run ``load()`` (a callable that drives traffic) while py-spy samples ``pid``."""
    t = threading.Thread(target=load, daemon=True)
    t.start()
    try:
        return record(pid, seconds, out)
    finally:
        t.join()


def _frames(stack: str) -> list[tuple[str, str]]:
    frames = []
    for raw in stack.split(";"):
        m = FRAME.match(raw.strip())
        if m:
            frames.append((m.group("func"), m.group("file")))
        else:
            frames.append((raw.strip(), ""))
    return frames


def _label(func: str, file: str) -> str:
    short = file
    for marker in ("/site-packages/", "/src/", "/lib/python3"):
        if marker in file:
            short = file.split(marker, 1)[1]
            break
    return f"{func} ({short})"


def analyze(path: Path, top: int = 15, expected_samples: int | None = None) -> dict[str, Any]:
    self_c: Counter[str] = Counter()
    incl_c: Counter[str] = Counter()
    area_c: Counter[str] = Counter()
    busy = 0
    threads: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = _frames(stack)
        if not frames:
            continue
        func, file = frames[-1]
        if any(func == f and file.endswith(fl) for f, fl in IDLE_LEAVES):
            continue
        busy += n
        if any("threading.py" in fl for _, fl in frames):
            threads["worker threads (cache)"] += n
        else:
            threads["event loop thread"] += n
        self_c[_label(func, file)] += n
        for label in {_label(f, fl) for f, fl in frames}:
            incl_c[label] += n
        area = "other (C code, builtins)"
        for name, marker in AREAS:
            if marker in file:
                area = name
                break
        area_c[area] += n

    def pct(c: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / busy, 1)) for k, v in c.most_common(top)] if busy else []

    return {
        "samples_busy": busy,
        "busy_pct": round(100 * busy / expected_samples, 1) if expected_samples else None,
        "self": pct(self_c),
        "inclusive_ridethrough": pct(
            Counter(
                {
                    k: v
                    for k, v in incl_c.items()
                    if "(ridethrough/" in k and not any(r in k for r in _ROOT_CHAIN)
                }
            )
        ),
        "inclusive_libraries": pct(
            Counter(
                {
                    k: v
                    for k, v in incl_c.items()
                    if "(ridethrough/" not in k and not any(r in k for r in _ROOT_CHAIN)
                }
            )
        ),
        "threads": [(k, round(100 * v / busy, 1)) for k, v in threads.most_common()]
        if busy
        else [],
        "areas": [(k, round(100 * v / busy, 1)) for k, v in area_c.most_common()] if busy else [],
    }
