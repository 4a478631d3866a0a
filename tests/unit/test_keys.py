"""Gateway keys: hashed in config, matched in constant time, made by `hash-key`."""

from __future__ import annotations

from click.testing import CliRunner

from ridethrough.cli import main
from ridethrough.config import GatewayKey
from ridethrough.keys import KeyRing, hash_key, presented_key


def test_keyring_identifies_by_hash():
    ring = KeyRing([GatewayKey(name="a", sha256=hash_key("alpha")),
                    GatewayKey(name="b", sha256="sha256:" + hash_key("beta"))])
    assert ring.identify("alpha") == "a"
    assert ring.identify("beta") == "b"
    assert ring.identify("gamma") is None
    assert ring.identify(None) is None


def test_presented_key_from_either_header():
    assert presented_key({"x-api-key": "k1"}) == "k1"
    assert presented_key({"authorization": "Bearer k2"}) == "k2"
    assert presented_key({"authorization": "Basic zzz"}) is None


def test_hash_key_cli_outputs_config_snippet():
    r = CliRunner().invoke(main, ["hash-key", "secret", "--name", "web"])
    assert r.exit_code == 0
    assert f"sha256: {hash_key('secret')}" in r.output and "name: web" in r.output
    assert "secret\n" not in r.output.split("sha256")[0]
    r = CliRunner().invoke(main, ["hash-key"])
    assert "# new key" in r.output
    new = r.output.split(": ", 1)[1].split("\n")[0]
    assert hash_key(new) in r.output
