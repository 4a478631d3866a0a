"""routing/retry.py: the wait before asking the same target again, or None (move on)."""

from __future__ import annotations

import random

import pytest

from ridethrough.config import RetryConfig
from ridethrough.errors import ErrorClass, UpstreamError
from ridethrough.routing.budget import RetryBudget
from ridethrough.routing.clock import FakeClock
from ridethrough.routing.retry import RetryPolicy, Wait

C = ErrorClass


def policy(*, budget: float = 100.0, **cfg: float) -> RetryPolicy:
    clock = FakeClock()
    return RetryPolicy(RetryConfig(**cfg), RetryBudget(0.2, 10.0, clock, cap=budget, initial=budget),
                       random.Random(7))


def err(cls: ErrorClass, retry_after: float | None = None) -> UpstreamError:
    return UpstreamError(cls, "x", retry_after=retry_after)


def ask(p: RetryPolicy, e: UpstreamError, *, tries: int = 1, remaining: float = 60.0,
        others_left: bool = True, waited: bool = False) -> Wait | None:
    return p.wait(e, tries=tries, remaining=remaining, others_left=others_left,
                  waited_retry_after=waited)


@pytest.mark.parametrize("cls", [C.SERVER, C.OVERLOADED])
def test_a_retryable_class_gets_one_jittered_backoff(cls):
    p = policy(backoff_s=0.25)
    w = ask(p, err(cls))
    assert w is not None and not w.retry_after
    assert 0.125 <= w.seconds <= 0.375
    assert ask(p, err(cls), tries=2) is None       # same_target_retries: 1


@pytest.mark.parametrize("cls", [C.RATE_LIMITED, C.AUTH, C.CLIENT, C.TRUNCATED, C.TIMEOUT])
def test_other_classes_move_on(cls):
    assert ask(policy(), err(cls)) is None


def test_no_backoff_the_deadline_cannot_afford():
    assert ask(policy(backoff_s=0.25), err(C.SERVER), remaining=1.0) is None


def test_an_empty_budget_means_no_retry():
    assert ask(policy(budget=0.0), err(C.SERVER)) is None


def test_retry_after_is_waited_once_only_on_the_last_target():
    p = policy()
    assert ask(p, err(C.RATE_LIMITED, retry_after=3)) is None                  # others left
    w = ask(p, err(C.RATE_LIMITED, retry_after=3), others_left=False)
    assert w == Wait(3, retry_after=True)
    assert ask(p, err(C.RATE_LIMITED, retry_after=3), others_left=False, waited=True) is None
    assert ask(p, err(C.RATE_LIMITED, retry_after=30), others_left=False) is None  # over the cap
    assert ask(p, err(C.RATE_LIMITED, retry_after=3), others_left=False, remaining=3.5) is None


def test_a_reclassified_error_is_a_copy():
    e = UpstreamError(C.CLIENT, "bad", upstream_status=404, body=b"{}", fields=("model",))
    assert e.status == 404 and e.upstream_status == 404
    copy = e.reclassified(C.TRANSLATION, target="t/m")
    assert e.error_class is C.CLIENT and e.target is None          # the original is untouched
    assert copy.error_class is C.TRANSLATION and copy.target == "t/m"
    assert copy.upstream_status == 404 and copy.param == "model" and copy.body == b"{}"
    assert copy.status == 502   # not the caller's error any more: never answered as a 404
