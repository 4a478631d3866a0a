"""`ridethrough serve` as a real process: start-up report, and a graceful SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from ridethrough.harness import free_port

CONFIG = """
server: {shutdown_grace_s: 20}
providers:
  slow: {kind: simulated, format: anthropic, token_delay_s: 0.02}
  nokey: {kind: anthropic, api_key_env: RT_TEST_DEFINITELY_UNSET}
routes:
  claude-sonnet-4-5:
    targets: [{provider: slow, model: claude-sonnet-4-5}]
"""


@pytest.fixture()
def server(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ridethrough", "serve", "--config", str(cfg),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("server did not start: " + proc.stderr.read())
    yield proc, url
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def test_sigterm_lets_running_stream_finish_and_refuses_new_work(server):
    proc, url = server
    result: dict[str, object] = {}

    def consume():
        body = {"model": "claude-sonnet-4-5", "max_tokens": 60, "stream": True,
                "messages": [{"role": "user", "content": "a long story please"}]}
        with httpx.stream("POST", url + "/v1/messages", json=body,
                          headers={"anthropic-version": "2023-06-01"}, timeout=60) as r:
            result["text"] = "".join(r.iter_text())

    t = threading.Thread(target=consume)
    t.start()
    time.sleep(0.3)  # the stream is under way (60 tokens × 20 ms)
    proc.send_signal(signal.SIGTERM)
    t.join(60)
    assert "event: message_stop" in str(result.get("text"))  # finished, not cut
    # uvicorn re-raises the signal once shut down cleanly, so the exit says "terminated"
    assert proc.wait(30) in (0, -signal.SIGTERM)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/healthz", timeout=2)
    err = proc.stderr.read()
    assert "provider nokey" in err and "RT_TEST_DEFINITELY_UNSET is not set" in err
