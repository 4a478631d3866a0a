"""The golden comparison must be able to fail, or every fixture test below proves nothing."""

from __future__ import annotations

import pytest

from ._golden import assert_matches


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        ({"a": 1}, {"a": 2}),
        ({"a": 1, "b": 2}, {"a": 1}),
        ({"a": 1}, {"a": 1, "b": None}),
        ([1, 2], [1, 2, 3]),
        ({"n": 1}, {"n": 1.0}),
        ({"n": True}, {"n": 1}),
        ({"id": "call_x"}, {"id": "<any:toolu_>"}),
        ({"id": "toolu_"}, {"id": "<any:toolu_>"}),
        ({"id": None}, {"id": "<any:toolu_>"}),
    ],
)
def test_mismatches_are_reported(actual: object, expected: object) -> None:
    with pytest.raises(AssertionError):
        assert_matches(actual, expected)


def test_minted_id_placeholder_accepts_any_id_with_the_prefix() -> None:
    assert_matches({"id": "toolu_AbC123"}, {"id": "<any:toolu_>"})
