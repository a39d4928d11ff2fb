"""The one retry policy of the adapters (kappa.adapters.retry): how many tries a failing call gets, and how
long they take, for each way of bounding it."""

from __future__ import annotations

import asyncio
import time

import pytest

from kappa.adapters.retry import retrying, retrying_blocking


class Flaky:
    """Fails with `error` for the first `failures` calls, then answers "ok"."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def worth_retrying(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError)


@pytest.mark.parametrize(
    ("bound", "failures", "error", "answer", "calls", "waited"),
    [
        # Within the bound: the answer, after the policy's waits (0.1 s, then 0.2 s).
        ({"tries": 5}, 2, TimeoutError("slow"), "ok", 3, 0.3),
        # Tries run out: the last error as it is.
        ({"tries": 3}, 9, TimeoutError("slow"), TimeoutError, 3, 0.3),
        # A time budget: no wait that would end past it (0.1 s fits 0.25 s, a further 0.2 s does not).
        ({"within": 0.25}, 9, TimeoutError("slow"), TimeoutError, 2, 0.1),
        # Whichever comes first.
        ({"tries": 2, "within": 10.0}, 9, TimeoutError("slow"), TimeoutError, 2, 0.1),
        # Not worth another try: raised at once.
        ({"tries": 5}, 9, ValueError("bad"), ValueError, 1, 0.0),
    ],
)
def test_tries_and_waits(
    bound: dict[str, float], failures: int, error: Exception, answer: object, calls: int, waited: float
) -> None:
    for flavour in ("blocking", "async"):
        call = Flaky(failures, error)
        started = time.monotonic()
        try:
            if flavour == "blocking":
                got: object = retrying_blocking(worth_retrying, **bound)(call)  # type: ignore[arg-type]
            else:
                got = asyncio.run(retrying(worth_retrying, **bound)(asyncio.to_thread, call))  # type: ignore[arg-type]
        except Exception as exc:
            got = type(exc)
        elapsed = time.monotonic() - started
        assert (got, call.calls) == (answer, calls), flavour
        assert waited <= elapsed < 2 * waited + 0.5, (flavour, elapsed)  # slack for a loaded machine
