"""A ReplayRun that could never replay anything is refused at preflight, before it creates anything, with a
message naming the field: a start in the future (CEL has no clock, so admission cannot), and a bounded end
that lies before the start once the start is resolved (admission refuses it only when both are explicit
offsets). Real API server, Kafka and PostgreSQL; FKO is played by its double. About 50 s: the shop, then two
runs that end at preflight.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.shop import Shop, flinkdeployments, phase, reasons, replayrun
from tests.integration.testbed import Kubectl, conditions


def ts(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def test_a_run_that_cannot_replay_anything_fails_preflight_naming_the_field_and_creates_nothing(
    shop: Shop, kubectl: Kubectl
) -> None:
    now = datetime.now(UTC)
    every_partition = [{"topic": shop.topic, "partition": p, "offset": 0} for p in range(3)]
    cases: list[tuple[str, str, dict[str, Any], str, str, str]] = [
        # name, version, spec, failed check, its reason, the field its message names
        (
            "from-tomorrow",
            "v2",
            {"from": {"timestamp": ts(now + timedelta(days=1))}},
            "StartTime",
            "StartInFuture",
            "spec.from.timestamp",
        ),
        (
            # Every record so far is older than `now`: the start resolves to the head, past the end offsets.
            "ends-before-it-starts",
            "v3",
            {
                "from": {"timestamp": ts(now)},
                "until": {"offsets": every_partition},
                "output": {"table": "sandbox"},
            },
            "EndAfterStart",
            "EndBeforeStart",
            "spec.until.offsets",
        ),
    ]
    for name, version, spec, check, reason, field in cases:
        kubectl.apply(replayrun(name, version, **spec))
        run = kubectl.wait_for(
            "rr", name, lambda o: phase(o) not in (None, "Pending", "Preflight"), timeout=60, what="preflight"
        )
        assert (phase(run), run["status"].get("reason")) == ("Failed", "PreflightFailed"), name
        stalled = conditions(run)["Stalled"]
        assert stalled["reason"] == "PreflightFailed" and field in stalled["message"], stalled
        found = {c["name"]: c for c in run["status"]["preflight"]}[check]
        assert (found["passed"], found["reason"]) == (False, reason) and field in found["message"], found
        assert "PreflightFailed" in reasons(kubectl, name)
        # Nothing was created: no deployment, no consumer group, no output; readers never moved.
        assert f"sessionizer-{version}" not in flinkdeployments(kubectl), name
        assert f"{kubectl.namespace}.sessionizer.{version}" not in shop.groups(), name
        assert not shop.table_exists(f"sessions_{version}") and not shop.table_exists("sandbox"), name
        assert shop.view_table() == "sessions_v1"
