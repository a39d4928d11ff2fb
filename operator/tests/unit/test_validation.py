"""Validation gates before a cutover: count ratio, sampled key diff, SQL checks and the no-data policy."""

from __future__ import annotations

import pytest

from kappa.machines.validation import Gates, KeyDiff, Measured, evaluate

GATES = Gates(ratio_min=0.99, ratio_max=1.01, max_mismatch_ratio=None, no_data="Fail")


def m(active_count: int | None, new_count: int | None, **kw: object) -> Measured:
    return Measured("sessions_v1", "sessions_v2", active_count, new_count, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "measured", "gates", "expected"),
    [
        ("same count passes", m(100, 100), GATES, [("CountRatio", True, "Within")]),
        ("1% more passes", m(100, 101), GATES, [("CountRatio", True, "Within")]),
        ("2% fewer fails", m(100, 98), GATES, [("CountRatio", False, "OutOfBounds")]),
        ("no new table fails", m(100, None), GATES, [("CountRatio", False, "OutputMissing")]),
        ("both empty: policy Fail", m(0, 0), GATES, [("NoData", False, "NoData")]),
        (
            "both empty: policy Pass",
            m(0, 0),
            Gates(0.99, 1.01, None, "Pass"),
            [("NoData", True, "NoDataPassed")],
        ),
        ("active empty, new not", m(0, 5), GATES, [("CountRatio", False, "ActiveEmpty")]),
        (
            "nothing active yet: the no-data policy decides",
            Measured(None, "sessions_v2", None, 10),
            GATES,
            [("NoData", False, "NoData")],
        ),
        (
            "key diff within the allowed share",
            m(100, 100, key_diff=KeyDiff(100, 1, ("u1",))),
            Gates(0.99, 1.01, 0.02, "Fail"),
            [("CountRatio", True, "Within"), ("KeyDiff", True, "Within")],
        ),
        (
            "key diff over the allowed share",
            m(100, 100, key_diff=KeyDiff(100, 30, ("u1", "u2"))),
            Gates(0.99, 1.01, 0.0, "Fail"),
            [("CountRatio", True, "Within"), ("KeyDiff", False, "TooManyDiffer")],
        ),
        (
            "key diff that could not run",
            m(100, 100, key_diff="no one-column primary key"),
            Gates(0.99, 1.01, 0.0, "Fail"),
            [("CountRatio", True, "Within"), ("KeyDiff", False, "DiffFailed")],
        ),
        (
            "SQL checks pass and fail by name",
            m(100, 100, sql=(("positive", True, "returned true"), ("unique", False, "returned false"))),
            GATES,
            [
                ("CountRatio", True, "Within"),
                ("sql/positive", True, "Passed"),
                ("sql/unique", False, "Failed"),
            ],
        ),
    ],
)
def test_gates(case: str, measured: Measured, gates: Gates, expected: list[tuple[str, bool, str]]) -> None:
    assert [(c.name, c.passed, c.reason) for c in evaluate(measured, gates)] == expected


def test_the_ratio_message_names_both_counts_and_the_bounds() -> None:
    (check,) = evaluate(m(200, 150), GATES)
    assert check.message == "sessions_v2 has 150, sessions_v1 has 200: ratio 0.7500, allowed [0.99, 1.01]"
