"""Failpoints for crash tests. With KAPPA_FAILPOINTS=replay-transition (or replay-transition@NAMESPACE) the
operator dies (no cleanup, as under SIGKILL) right after it wrote a ReplayRun's new phase and before it acted
on it: the moment crash safety is about. Unset in production; tests set it on the operator they run."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)
EXIT_CODE = 86


def crash_at(point: str, namespace: str, detail: str) -> None:
    for entry in (os.environ.get("KAPPA_FAILPOINTS") or "").split(","):
        name, _, scope = entry.strip().partition("@")
        if name == point and scope in ("", namespace):
            log.warning("failpoint %s hit at %s/%s: exiting now", point, namespace, detail)
            logging.shutdown()
            os._exit(EXIT_CODE)
