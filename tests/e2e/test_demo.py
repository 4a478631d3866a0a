"""The README's main job, in its CI-sized form: an outage ridden through, 0 client failures."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from ridethrough.demo import local_tier_available, play_demo


@pytest.mark.slow
def test_fast_demo_rides_through_every_tier():
    out = io.StringIO()
    run = play_demo(fast=True, console=Console(file=out, width=140, force_terminal=False))
    text = out.getvalue()
    assert run.failed == 0, text
    assert run.total > 50
    assert "0 of" in text and "client requests failed" in text
    names = [ph.name for ph in run.plan]
    if local_tier_available():
        assert names[-3:] == ["both clouds down", "local model stopped", "all back"]
    # every phase showed the tier it is there to show: the primary, the secondary while the
    # primary is down, then the stale cache, the local model and the static answer
    assert run.missing() == {}, text
