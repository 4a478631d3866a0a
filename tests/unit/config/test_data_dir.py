"""Every file the gateway writes lives under one data folder, chosen in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from ridethrough.config import parse_config
from ridethrough.gateway import data_dir
from ridethrough.health import default_store_path

CFG = {"providers": {"sim": {"kind": "simulated", "format": "openai"}},
       "routes": {"r": {"targets": [{"provider": "sim", "model": "m"}]}}}


def test_cache_and_health_store_follow_xdg_state_home(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    cfg = parse_config(CFG)
    assert data_dir(cfg) == tmp_path / "ridethrough"
    assert Path(default_store_path(cfg.server.data_dir)).parent == data_dir(cfg)


def test_configured_data_dir_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "ignored"))
    cfg = parse_config({**CFG, "server": {"data_dir": str(tmp_path / "rt")}})
    assert data_dir(cfg) == tmp_path / "rt"
    assert default_store_path(cfg.server.data_dir) == str(tmp_path / "rt" / "health.sqlite3")


def test_without_xdg_state_home_it_is_under_the_home_folder(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data_dir(parse_config(CFG)) == tmp_path / ".local" / "state" / "ridethrough"
