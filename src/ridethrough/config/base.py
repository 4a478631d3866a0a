"""The strict base of every config model, and the one place that decides where the gateway
keeps its files (``data_dir``: the cache, the health store and its leader lock)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict


def data_dir(configured: str | None) -> Path:
    """``server.data_dir``, else ``$XDG_STATE_HOME/ridethrough`` (``~/.local/state/ridethrough``).

    The cache, the health store and its leader lock all live here, so one setting (or one
    environment variable) moves every file the gateway writes.
    """
    if configured:
        return Path(configured).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(state) / "ridethrough"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
