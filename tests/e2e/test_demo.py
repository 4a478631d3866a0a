"""The README's main job, in its CI-sized form: an outage ridden through, 0 client failures."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from ridethrough.demo import local_tier_available, run_demo


@pytest.mark.slow
def test_fast_demo_rides_through_every_tier():
    out = io.StringIO()
    code = run_demo(fast=True, console=Console(file=out, width=140, force_terminal=False))
    text = out.getvalue()
    assert code == 0, text
    assert "0 of" in text and "client requests failed" in text
    # the summary shows each tier answering in its phase
    assert "openai-sim" in text
    if local_tier_available():
        assert "cache (stale)" in text and "static answer" in text and "local" in text
