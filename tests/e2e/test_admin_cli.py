"""`ridethrough admin` drives a running gateway's breakers (admin key required)."""

from __future__ import annotations

from click.testing import CliRunner

from ridethrough.cli import main
from ridethrough.config import parse_config
from ridethrough.harness import GatewayThread
from ridethrough.keys import hash_key


def test_drain_restore_and_breakers_from_the_cli():
    cfg = parse_config({
        "server": {"access_log": False, "admin_keys": [{"name": "ops", "sha256": hash_key("adm-1")}]},
        "providers": {"p": {"kind": "simulated", "format": "anthropic", "token_delay_s": 0}},
        "routes": {"m": {"targets": [{"provider": "p", "model": "claude-sonnet-4-5"}]}},
    })
    with GatewayThread(cfg) as g:
        run = CliRunner().invoke
        env = {"RIDETHROUGH_ADMIN_KEY": "adm-1", "RIDETHROUGH_URL": g.url}
        r = run(main, ["admin", "drain", "p/claude-sonnet-4-5"], env=env)
        assert r.exit_code == 0, r.output
        assert "forced down" in r.output
        assert g.gateway.board.get("p/claude-sonnet-4-5").availability() == "drained"
        r = run(main, ["admin", "breakers"], env=env)
        assert "p/claude-sonnet-4-5" in r.output and "forced down" in r.output
        r = run(main, ["admin", "restore", "p/claude-sonnet-4-5"], env=env)
        assert r.exit_code == 0 and g.gateway.board.get("p/claude-sonnet-4-5").availability() is None
        r = run(main, ["admin", "drain", "p/claude-sonnet-4-5"],
                env={**env, "RIDETHROUGH_ADMIN_KEY": "wrong"})
        assert r.exit_code == 1 and "401" in r.output
