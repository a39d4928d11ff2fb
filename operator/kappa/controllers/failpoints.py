"""Failpoints for crash tests: with KAPPA_FAILPOINTS=replay-transition the operator dies (no cleanup, as
under SIGKILL) right after it wrote a ReplayRun's new phase and before it acted on it, which is the moment
crash safety is about. Unset in production; tests set it on the operator process they run."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)
EXIT_CODE = 86


def crash_at(point: str, detail: str) -> None:
    if point in (os.environ.get("KAPPA_FAILPOINTS") or "").split(","):
        log.warning("failpoint %s hit at %s: exiting now", point, detail)
        logging.shutdown()
        os._exit(EXIT_CODE)
