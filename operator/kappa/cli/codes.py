"""Exit codes of `kubectl kappa`, one meaning each, so that scripts can branch on them (docs/cli.md)."""

OK = 0
"""Done: the run succeeded (status --watch), the request was acted on (approve/abort/rollback), the plan
passes (replay --plan)."""
ERROR = 1
"""Could not do it: not found, the API server or Kafka unreachable, input refused by the API server."""
USAGE = 2
"""Bad command line (argparse's own code)."""
FAILED = 3
"""The ReplayRun failed (status --watch), or preflight would fail (replay --plan)."""
ABORTED = 4
"""The ReplayRun was aborted (status --watch)."""
ROLLED_BACK = 5
"""The ReplayRun rolled back (status --watch)."""
TIMEOUT = 6
"""--timeout passed first: the run did not end, or the operator did not echo the request."""
REFUSED = 7
"""The operator handled the request (echoed it in status.handledRequests) but did not act on it."""
INTERRUPTED = 130
"""Ctrl-C."""
