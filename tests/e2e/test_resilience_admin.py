"""The operator's levers: drain a target so it gets no traffic, force it up, give it back.

POST /admin/targets {"target": "provider/model", "mode": "down" | "up" | "auto"} and
GET /admin/breakers, behind an admin key stored as a SHA-256 hash (server.admin_keys).
"""

from __future__ import annotations

import httpx
import pytest

from ridethrough.keys import hash_key
from ridethrough.simulator import Fault, FaultKind

ADMIN_KEY = "rt-admin-test-key"
ROUTE = "claude-first"


@pytest.fixture()
def gt(resilience_kit, start_gateway):
    cfg = resilience_kit.config(
        server={"admin_keys": [{"name": "ops", "sha256": hash_key(ADMIN_KEY)}]},
        resilience={"breaker": {"consecutive_failures": 1}},
    )
    return start_gateway(cfg)


def admin(gt, method: str, path: str, key: str | None = ADMIN_KEY, **kw) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.request(method, gt.url + path, headers=headers, timeout=10, **kw)


def breaker_row(gt, target: str) -> dict:
    rows = admin(gt, "GET", "/admin/breakers").json()["targets"]
    return next(r for r in rows if r["target"] == target)


def test_admin_api_needs_the_admin_key(gt, resilience_kit):
    target = resilience_kit.target_key("a_primary")
    assert admin(gt, "GET", "/admin/breakers", key=None).status_code == 401
    assert admin(gt, "GET", "/admin/breakers", key="wrong").status_code == 401
    r = admin(gt, "POST", "/admin/targets", key="wrong", json={"target": target, "mode": "down"})
    assert r.status_code == 401
    assert breaker_row(gt, target)["forced"] is None     # nothing changed


def test_admin_api_is_off_without_admin_keys(resilience_kit, start_gateway):
    gt = start_gateway(resilience_kit.config())
    assert admin(gt, "GET", "/admin/breakers").status_code == 403


def test_admin_api_rejects_unknown_targets_and_modes(gt, resilience_kit):
    r = admin(gt, "POST", "/admin/targets", json={"target": "nope/model", "mode": "down"})
    assert r.status_code == 404
    r = admin(gt, "POST", "/admin/targets",
              json={"target": resilience_kit.target_key("a_primary"), "mode": "sideways"})
    assert r.status_code == 400


@pytest.mark.parametrize("sdk,stream", [("anthropic", False), ("openai", True)])
def test_drain_then_restore_a_target(gt, resilience_kit, sdk, stream):
    kit = resilience_kit
    primary, secondary = kit.ROUTES[ROUTE]
    p_sim, s_sim = kit.sim(gt, primary), kit.sim(gt, secondary)
    target = kit.target_key(primary)

    r = admin(gt, "POST", "/admin/targets", json={"target": target, "mode": "down"})
    assert r.status_code == 200 and r.json()["forced"] == "down"
    row = breaker_row(gt, target)
    assert row["available"] is False and row["skip_reason"] == "drained"
    for i in range(4):
        prompt = f"drained {i}"
        seen = kit.ask(sdk, gt.url, ROUTE, prompt, stream=stream)
        assert kit.answered_by(seen, secondary, prompt), seen
        assert f"{target}=drained" in seen.headers["x-ridethrough-fallback-reason"]
    assert p_sim.stats.total == 0
    assert s_sim.stats.total == 4

    r = admin(gt, "POST", "/admin/targets", json={"target": target, "mode": "auto"})
    assert r.status_code == 200 and r.json()["forced"] is None
    assert breaker_row(gt, target)["available"] is True
    for i in range(3):
        prompt = f"restored {i}"
        assert kit.answered_by(kit.ask(sdk, gt.url, ROUTE, prompt, stream=stream), primary, prompt)
    assert p_sim.stats.total == 3
    assert s_sim.stats.total == 4


def test_force_up_overrides_an_open_breaker_and_auto_gives_control_back(gt, resilience_kit):
    kit = resilience_kit
    primary, _ = kit.ROUTES[ROUTE]
    p_sim = kit.sim(gt, primary)
    target = kit.target_key(primary)
    p_sim.set_fault(Fault(FaultKind.HTTP_ERROR, status=503))
    kit.ask("anthropic", gt.url, ROUTE, "open it", stream=False)
    assert breaker_row(gt, target)["state"] == "open"
    p_sim.clear_faults()
    p_sim.stats.reset()

    # The operator knows better than the breaker: the provider is back.
    admin(gt, "POST", "/admin/targets", json={"target": target, "mode": "up"})
    assert breaker_row(gt, target)["available"] is True
    assert kit.answered_by(kit.ask("anthropic", gt.url, ROUTE, "forced up", stream=False),
                           primary, "forced up")
    assert p_sim.stats.total == 1

    admin(gt, "POST", "/admin/targets", json={"target": target, "mode": "auto"})
    assert kit.answered_by(kit.ask("openai", gt.url, ROUTE, "auto again", stream=False),
                           primary, "auto again")


def test_breaker_table_lists_every_target_with_its_state(gt, resilience_kit):
    kit = resilience_kit
    p_sim = kit.sim(gt, "o_primary")
    p_sim.set_fault(Fault(FaultKind.RESET))
    kit.ask("openai", gt.url, "gpt-first", "reset", stream=False)
    rows = {r["target"]: r for r in admin(gt, "GET", "/admin/breakers").json()["targets"]}
    assert set(rows) == {kit.target_key(n) for n in ("a_primary", "o_backup", "o_primary", "a_backup")}
    bad = rows[kit.target_key("o_primary")]
    assert bad["state"] == "open" and bad["last_error"] == "connect" and bad["retry_in_s"] > 0
    assert rows[kit.target_key("a_backup")]["state"] == "closed"
