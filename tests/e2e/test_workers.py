"""`ridethrough serve --workers 2` as a real process tree: one port, two worker processes,
read as one gateway.

Two simulators on loopback stand in for two clouds. Every request goes over a fresh
connection, so the kernel's SO_REUSEPORT hashing spreads them over both workers; the
``x-ridethrough-worker`` header says which one answered. Assertions are about outcomes
and counts (no client failures, one incident, identical JSON from every worker, counters
that add up), never about how long anything took; every wait polls for a state with a
timeout far above the unloaded latency.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from ridethrough.harness import free_port
from ridethrough.health.cli import status as status_cli
from ridethrough.keys import hash_key
from ridethrough.simulator import Fault, FaultKind, SimulatorServer

MODEL = "claude-sonnet-4-6"
PRIMARY = f"primary/{MODEL}"
HEADERS = {"anthropic-version": "2023-06-01"}
ADMIN = {"x-api-key": "rt-admin-workers-test"}
WAIT_S = 60.0     # any single state we wait for arrives in well under a second unloaded

CONFIG = """
server: {{data_dir: "{data_dir}", access_log: false, shutdown_grace_s: 20,
          admin_keys: [{{name: ops, sha256: "{admin_hash}"}}]}}
providers:
  primary: {{kind: simulated, format: anthropic, base_url: "{primary}",
             timeouts: {{connect: 5, first_byte: 10, first_token: 10, idle: 10, total: 20}}}}
  secondary: {{kind: simulated, format: anthropic, base_url: "{secondary}",
               timeouts: {{connect: 5, first_byte: 10, first_token: 10, idle: 10, total: 20}}}}
routes:
  claude:
    targets: [{{provider: primary, model: {model}}}, {{provider: secondary, model: {model}}}]
    cache: {{mode: fallback-only, ttl_s: 0}}
resilience: {{retry: {{same_target_retries: 0, backoff_s: 0.01}}}}
health:
  tick_s: 0.2
  flush_interval_s: 1
  thresholds: {{window_s: 600, min_requests: 5}}
  incidents: {{open_after_s: 1, quiet_period_s: 3600}}
"""


def until(what: str, check: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


class Cluster:
    def __init__(self, tmp: Path, token_delay_s: float = 0.0) -> None:
        self.primary = SimulatorServer("primary", token_delay_s=token_delay_s)
        self.secondary = SimulatorServer("secondary", token_delay_s=token_delay_s)
        self.primary.start_in_thread()
        self.secondary.start_in_thread()
        self.data_dir = tmp / "data"
        config = tmp / "workers.yaml"
        config.write_text(CONFIG.format(data_dir=self.data_dir, primary=self.primary.base_url,
                                        secondary=self.secondary.base_url, model=MODEL,
                                        admin_hash=hash_key(ADMIN["x-api-key"])))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = tmp / "serve.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ridethrough", "serve", "--config", str(config),
             "--port", self.url.rsplit(":", 1)[1], "--workers", "2"],
            stdout=subprocess.DEVNULL, stderr=self.log.open("w"))
        self.sent = 0

    def start(self) -> Cluster:
        def ready() -> bool:
            if self.proc.poll() is not None:
                pytest.fail("serve exited during start-up:\n" + self.log.read_text())
            try:
                health = self.get("/api/ridethrough/health.json")
            except httpx.HTTPError:
                return False
            return sum(w["live"] for w in health["workers"]) == 2 and health["leader"] is not None
        until("two live workers and a leader", ready)
        return self

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.primary.stop_thread()
        self.secondary.stop_thread()

    # -- talking to it (a fresh connection every time) -------------------------------------

    def ask(self, text: str) -> httpx.Response:
        self.sent += 1
        body = {"model": "claude", "max_tokens": 16,
                "messages": [{"role": "user", "content": text}]}
        return httpx.post(self.url + "/v1/messages", json=body, headers=HEADERS, timeout=30)

    def get_raw(self, path: str) -> httpx.Response:
        r = httpx.get(self.url + path, timeout=30)
        r.raise_for_status()
        return r

    def get(self, path: str) -> Any:
        return self.get_raw(path).json()

    def by_worker(self, path: str, reads: int, normalize: Callable[[httpx.Response], Any]
                  ) -> dict[str, list[Any]]:
        """``reads`` reads of ``path``, grouped by the worker pid that answered."""
        seen: dict[str, list[Any]] = {}
        for _ in range(reads):
            r = self.get_raw(path)
            seen.setdefault(r.headers["x-ridethrough-worker"], []).append(normalize(r))
        return seen

    def worker_pids(self) -> set[int]:
        return {w["pid"] for w in self.get("/api/ridethrough/health.json")["workers"] if w["live"]}

    def requests_counted(self) -> int:
        text = self.get_raw("/metrics").text
        found = re.findall(r"^ridethrough_requests_total\{.*\} (\d+)$", text, re.M)
        return sum(int(n) for n in found)

    def settle(self) -> None:
        """Every worker has shared all it saw, and the leader has published after that."""
        until("every request counted in /metrics", lambda: self.requests_counted() == self.sent)
        mark = time.time()

        def published_after_mark() -> bool:
            at = self.get("/api/ridethrough/health.json")["leader"]["published_at"]
            return datetime.fromisoformat(at).timestamp() > mark
        until("a publication by the leader after the last write", published_after_mark)


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c.start()
    finally:
        c.stop()


def _incidents(r: httpx.Response) -> list[dict[str, Any]]:
    incidents = r.json()["incidents"]
    for i in incidents:
        i["ridethrough"].pop("duration_s")  # an open incident's age grows with the clock
    return incidents


def _alive(pid: int) -> bool:
    """Running (a zombie awaiting its parent has already closed its sockets)."""
    try:
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    except (FileNotFoundError, ProcessLookupError):  # gone while we read
        return False


def _one_value(by_worker: dict[str, list[Any]]) -> Any:
    values = [v for vs in by_worker.values() for v in vs]
    assert all(v == values[0] for v in values), "workers disagree"
    return values[0]


def test_two_workers_read_as_one_gateway(cluster: Cluster) -> None:
    served_by: set[str] = set()
    for i in range(40):
        r = cluster.ask(f"question {i}")
        assert r.status_code == 200, r.text
        served_by.add(r.headers["x-ridethrough-worker"])
    assert len(served_by) == 2                      # both workers took traffic
    assert {int(p) for p in served_by} == cluster.worker_pids()

    cluster.primary.set_fault(Fault(kind=FaultKind.HTTP_ERROR, status=503))
    failed = []
    for i in range(60):
        r = cluster.ask(f"during the outage {i}")
        if r.status_code != 200 or r.headers.get("x-ridethrough-target") == PRIMARY:
            failed.append((r.status_code, r.text[:200]))
    assert failed == []                            # every one answered by the secondary

    until("the incident", lambda: cluster.get("/api/v2/incidents/unresolved.json")["incidents"])
    cluster.settle()

    incidents = cluster.by_worker("/api/v2/incidents.json", 30, _incidents)
    assert len(incidents) == 2
    [incident] = _one_value(incidents)             # one incident, the same from every worker
    assert incident["name"] == f"Major outage at primary ({MODEL})"
    assert incident["status"] in ("investigating", "identified")
    # Counted across both workers: at least every request that hit the failing primary
    # after the incident's subject went bad, and all of them were saved.
    rt = incident["ridethrough"]
    assert rt["requests_affected"] > 0 and rt["requests_saved"] == rt["requests_affected"]

    components = _one_value(cluster.by_worker("/api/v2/components.json", 20, lambda r: r.json()))
    statuses = {c["name"]: c["status"] for c in components["components"]}
    assert statuses[PRIMARY] == "major_outage"
    assert statuses[f"secondary/{MODEL}"] == "operational"
    assert statuses["claude"] == "degraded_performance"   # answered, by a fallback

    summary = _one_value(cluster.by_worker("/api/v2/summary.json", 20, lambda r: {
        **r.json(), "incidents": _incidents(r)}))
    assert summary["status"]["indicator"] == "critical"

    def health(r: httpx.Response) -> dict[str, Any]:
        data = r.json()  # minus the clocks that move every tick, whoever answers
        data.pop("generated_at")
        data["store"].pop("last_write")
        data["leader"].pop("published_at")
        return data
    data = _one_value(cluster.by_worker("/api/ridethrough/health.json", 20, health))

    # Learned latency: each worker's own model, and one exact merge of their sketches.
    per_worker = {lv["worker"]: {(r["target"], r["phase"]): r["count"] for r in lv["targets"]}
                  for lv in data["latency"]}
    assert len(per_worker) == 2
    merged = {(r["target"], r["phase"]): r["count"] for r in data["latency_all"]["targets"]}
    key = (PRIMARY, "complete:le256")
    assert all(counts.get(key, 0) > 0 for counts in per_worker.values())   # both learned it
    assert merged[key] == sum(counts.get(key, 0) for counts in per_worker.values()) >= 40

    # /metrics: counters are the sum over both workers, and any worker says so.
    metrics = _one_value(cluster.by_worker("/metrics", 20, lambda r: r.text))
    assert cluster.requests_counted() == cluster.sent == 100
    assert f'ridethrough_component_status{{component="{PRIMARY}",kind="target"}} 3' in metrics
    assert "ridethrough_incidents_open 1" in metrics and "ridethrough_workers 2" in metrics
    assert re.search(r'ridethrough_breaker_state\{target="primary/[^"]+",worker="0"\}', metrics)
    assert re.search(r'ridethrough_breaker_state\{target="primary/[^"]+",worker="1"\}', metrics)

    def page(r: httpx.Response) -> str:
        html = re.sub(r"lasted [^·]*·", "", r.text)          # an open incident's age
        return re.sub(r"Updated [^.]*\.", "", html)          # the page's own clock
    html = _one_value(cluster.by_worker("/status", 20, page))
    assert f"Major outage at primary ({MODEL})" in html

    # `ridethrough status` reads the same JSON, so it prints the same, whichever answers.
    def terminal() -> str:
        out = CliRunner().invoke(status_cli, ["--url", cluster.url])
        assert out.exit_code == 0, out.output
        masked = re.sub(r"\b\d+ (s|min)\b", "<age>", out.output)
        return re.sub(r"[\s│┃━─┏┓┗┛┡┩└┘┌┐├┤┬┴┼╇╈╋┳┻]+", " ", masked)
    printed = {terminal() for _ in range(6)}
    assert len(printed) == 1
    out = printed.pop()
    assert "Major outage at primary" in out and "2 worker processes;" in out


def test_a_cached_answer_from_one_worker_is_served_stale_by_the_other(cluster: Cluster) -> None:
    first = cluster.ask("what is ride-through?")
    assert first.status_code == 200
    writer = first.headers["x-ridethrough-worker"]
    answer = first.json()["content"][0]["text"]

    def cached() -> bool:
        with sqlite3.connect(cluster.data_dir / "cache.sqlite3") as db:
            return db.execute("SELECT count(*) FROM entries").fetchone()[0] >= 1
    until("the answer in the shared cache", cached)

    cluster.primary.set_fault(Fault(kind=FaultKind.HTTP_ERROR, status=503))
    cluster.secondary.set_fault(Fault(kind=FaultKind.HTTP_ERROR, status=503))
    readers: set[str] = set()
    for _ in range(40):
        r = cluster.ask("what is ride-through?")
        assert r.status_code == 200, r.text            # both clouds down, still answered
        assert r.headers["x-ridethrough-cache"] == "stale"
        assert r.json()["content"][0]["text"] == answer
        readers.add(r.headers["x-ridethrough-worker"])
        if readers - {writer}:
            break
    assert readers - {writer}, "the other worker never answered"


def test_an_operator_drain_through_one_worker_reaches_every_worker(cluster: Cluster) -> None:
    def admin(mode: str) -> httpx.Response:
        r = httpx.post(cluster.url + "/admin/targets", json={"target": PRIMARY, "mode": mode},
                       headers=ADMIN, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["applies_to"] == "every worker"
        return r

    def forced_on_each_worker() -> dict[str, str | None]:
        seen: dict[str, str | None] = {}
        for _ in range(30):
            r = httpx.get(cluster.url + "/admin/breakers", headers=ADMIN, timeout=30)
            [row] = [t for t in r.json()["targets"] if t["target"] == PRIMARY]
            seen[r.headers["x-ridethrough-worker"]] = row["forced"]
        return seen

    def served_by() -> tuple[set[str], set[str]]:
        targets, workers = set(), set()
        for i in range(30):
            r = cluster.ask(f"question {i}")
            assert r.status_code == 200, r.text
            targets.add(r.headers["x-ridethrough-target"])
            workers.add(r.headers["x-ridethrough-worker"])
        return targets, workers

    admin("down")
    until("the drain on both workers", lambda: (
        (seen := forced_on_each_worker()) and len(seen) == 2 and set(seen.values()) == {"down"}))
    targets, workers = served_by()
    assert targets == {f"secondary/{MODEL}"} and len(workers) == 2

    # Restored through whichever worker takes the call: again for all.
    admin("auto")
    until("the restore on both workers", lambda: (
        (seen := forced_on_each_worker()) and len(seen) == 2 and set(seen.values()) == {None}))
    targets, workers = served_by()
    assert targets == {PRIMARY} and len(workers) == 2


def test_a_dead_worker_is_replaced_and_the_leader_hands_over(cluster: Cluster) -> None:
    cluster.primary.set_fault(Fault(kind=FaultKind.HTTP_ERROR, status=503))
    for i in range(30):
        assert cluster.ask(f"before {i}").status_code == 200
    until("the incident", lambda: cluster.get("/api/v2/incidents/unresolved.json")["incidents"])
    cluster.settle()
    [before] = cluster.get("/api/v2/incidents.json")["incidents"]
    health = cluster.get("/api/ridethrough/health.json")
    leader = health["leader"]["pid"]
    survivor = ({w["pid"] for w in health["workers"] if w["live"]} - {leader}).pop()

    os.kill(leader, signal.SIGKILL)
    until("the killed worker gone", lambda: not _alive(leader))
    answered: set[int] = set()
    for i in range(30):                             # the port stays up on the other worker
        r = cluster.ask(f"after {i}")
        assert r.status_code == 200, r.text
        answered.add(int(r.headers["x-ridethrough-worker"]))
    assert leader not in answered

    def replaced() -> set[int] | None:
        pids = cluster.worker_pids()
        return pids if len(pids) == 2 and leader not in pids else None
    pids = until("a replacement worker", replaced)
    assert survivor in pids

    def new_leader() -> bool:
        lead = cluster.get("/api/ridethrough/health.json")["leader"]
        return lead is not None and lead["pid"] != leader
    until("another worker leading", new_leader)
    cluster.settle()
    incidents = cluster.by_worker("/api/v2/incidents.json", 30, _incidents)
    [after] = _one_value(incidents)                # carried on: the same one, not a second
    assert after["id"] == before["id"] and after["status"] in ("investigating", "identified")
    assert after["ridethrough"]["requests_affected"] >= before["ridethrough"]["requests_affected"]


def test_sigterm_drains_every_worker(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, token_delay_s=0.02).start()
    try:
        pids = cluster.worker_pids()
        results: list[str] = []

        def stream(i: int) -> None:
            body = {"model": "claude", "max_tokens": 60, "stream": True,
                    "messages": [{"role": "user", "content": f"a long story {i}"}]}
            with httpx.stream("POST", cluster.url + "/v1/messages", json=body, headers=HEADERS,
                              timeout=60) as r:
                results.append("".join(r.iter_text()))

        threads = [threading.Thread(target=stream, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        until("the streams under way", lambda: cluster.primary.stats.total >= 6)
        cluster.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(WAIT_S)
        assert len(results) == 6
        assert all("event: message_stop" in text for text in results)   # finished, not cut
        assert cluster.proc.wait(WAIT_S) == 0
        assert not [p for p in pids if _alive(p)]
        with pytest.raises(httpx.ConnectError):
            httpx.get(cluster.url + "/healthz", timeout=5)
    finally:
        cluster.stop()
