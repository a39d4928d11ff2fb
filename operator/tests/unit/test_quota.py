"""bytes_quota, table-driven: a records/s throttle as a broker byte rate; and broker errors as QuotaError."""

from __future__ import annotations

import asyncio
import re
from types import SimpleNamespace
from typing import Any

import pytest

from kappa.adapters import quota
from kappa.adapters.quota import ClientQuotas, QuotaError, bytes_quota


@pytest.mark.parametrize(
    ("records_per_second", "average_record_bytes", "burst", "expected"),
    [
        pytest.param(1000, 1040.0, None, 1_040_000, id="rate-times-mean-size"),
        pytest.param(3, 100.5, None, 1024, id="floor-of-1-KiB"),
        pytest.param(10, 102.4, None, 1024, id="exactly-the-floor"),
        pytest.param(10, 102.41, None, 1025, id="rounded-up-not-down"),
        pytest.param(7, 333.3333, None, 2334, id="fractional-mean-rounds-up"),
        pytest.param(1000, 1040.0, 5000, 1_040_000, id="burst-does-not-raise-the-quota"),
        pytest.param(1000, 1040.0, 1000, 1_040_000, id="burst-equal-to-the-rate"),
        pytest.param(50_000, 16.0, None, 800_000, id="tiny-records-count-their-overhead-in-the-mean"),
    ],
)
def test_bytes_quota(
    records_per_second: int, average_record_bytes: float, burst: int | None, expected: int
) -> None:
    assert bytes_quota(records_per_second, average_record_bytes, burst) == expected


@pytest.mark.parametrize(
    ("records_per_second", "average_record_bytes", "burst", "message"),
    [
        pytest.param(0, 100.0, None, "records_per_second must be >= 1", id="no-rate"),
        pytest.param(10, 0.0, None, "average_record_bytes must be > 0", id="empty-input-has-no-mean"),
        pytest.param(10, float("nan"), None, "average_record_bytes must be > 0", id="nan-mean"),
        pytest.param(10, 100.0, 9, "burst (9) must be >= records_per_second (10)", id="burst-below-rate"),
    ],
)
def test_bytes_quota_refuses(
    records_per_second: int, average_record_bytes: float, burst: int | None, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        bytes_quota(records_per_second, average_record_bytes, burst)


def test_a_per_entry_broker_error_is_a_quota_error_with_the_brokers_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """AlterClientQuotas answers error code 0 at the top and the refusal per entry: that must not pass."""
    responses: list[Any] = [
        SimpleNamespace(error_code=0, error_message=None, entries=[]),  # describe: no quota yet
        SimpleNamespace(
            entries=[SimpleNamespace(error_code=42, error_message="Invalid configuration key x", entity=[])]
        ),
    ]
    monkeypatch.setattr(quota, "_send", lambda admin, request: responses.pop(0))
    quotas = ClientQuotas("unused:9092")
    monkeypatch.setattr(quotas, "_client", lambda: None)

    with pytest.raises(QuotaError) as raised:
        asyncio.run(quotas.set_consumer_byte_rate("replay-1", 1024))

    assert str(raised.value) == (
        "setting consumer_byte_rate of client id replay-1 failed: "
        "[Error 42] InvalidRequestError: Invalid configuration key x"
    )
