"""Where a version's Flink job runs: the one seam between the machines and a stream processor.

The seam is declarative, as FKO's own is. The machines say which state each version's job should be in
(`running` or `suspended`, optionally from a savepoint), rendered as a FlinkDeployment spec; a runtime carries
that out and reports back in FlinkDeployment's shape (FKO's `status.jobStatus`, `lifecycleState`, `error`), so
that machines/fko.py reads both the same way and no machine knows which runtime ran the job. Behind it, each
runtime turns the desired state into the imperative operations of its platform: deploy (from a savepoint),
suspend with a savepoint and resume, observe state, restarts, exceptions and the last checkpoint, cancel, and
dispose of a savepoint.

Where each part lives (this package re-exports nothing: import from the module):

- `seam`: the `JobRuntime` protocol, `RuntimeUnavailable` (an outage of the runtime's platform), `Disposal`,
  and `FD_API` (FlinkDeployment's API version, the shape both runtimes report in).
- `flink_deployment`: `FlinkDeploymentRuntime`: server-side applies the FlinkDeployment; FKO does the rest
  (and disposes of savepoints through FlinkStateSnapshots).
- `session`: `SessionRuntime`: a Flink session cluster over its REST API. The operator is its own FKO here:
  each version's desired spec and the runtime's record (job id per attempt, stop trigger, savepoint, last
  observation) live in a ConfigMap `{deployment}.flink-session` owned by the StreamJob, and every look at a
  version takes one step of machines/session_job.py, recording the step before the REST call it asks for.
"""
