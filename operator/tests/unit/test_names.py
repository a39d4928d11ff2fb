"""Derived per-version names."""

from __future__ import annotations

import pytest

from kappa.render import names


@pytest.mark.parametrize(
    ("func", "args", "expected"),
    [
        (names.consumer_group, ("shop", "sessionizer", "v2"), "shop.sessionizer.v2"),
        (names.deployment_name, ("sessionizer", "v2"), "sessionizer-v2"),
        (names.transactional_id_prefix, ("shop", "sessionizer", "v2"), "shop.sessionizer.v2"),
        (names.output_topic, ("sessions", "v2"), "sessions.v2"),
        (names.output_table, ("sessions", "v2-fix"), "sessions_v2_fix"),
    ],
)
def test_names(func: object, args: tuple[str, ...], expected: str) -> None:
    assert func(*args) == expected  # type: ignore[operator]


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25)])
def test_durations(text: str, seconds: float) -> None:
    from datetime import timedelta

    from kappa.api.base import duration

    assert duration(text) == timedelta(seconds=seconds)
