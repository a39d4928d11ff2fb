-- Actions on a kappa.dev ReplayRun. Each sets the annotation `kubectl kappa approve|abort|rollback` sets, and
-- nothing else: spec is never written, so there is no drift from Git. The operator echoes each request it
-- handled in status.handledRequests. An action is offered only where the operator acts on it.
local actions = {}
local status = obj.status or {}
local phase = status.phase or "Pending"
local annotations = obj.metadata.annotations or {}
local before_cutover = {
  Pending = true, Preflight = true, Replaying = true, CatchingUp = true, Validating = true, AwaitingApproval = true
}
local stalled = false
for _, c in ipairs(status.conditions or {}) do
  if c.type == "Stalled" and c.status == "True" then
    stalled = true
  end
end
local aborting = annotations["kappa.dev/abort"] ~= nil

-- approve: a Manual run before its cutover (an early approve counts when validation passes).
local manual = obj.spec.approval == nil or obj.spec.approval == "Manual"
actions["approve"] = {
  ["disabled"] = not (manual and before_cutover[phase] and annotations["kappa.dev/approve"] == nil) or aborting
}

-- abort: before the cutover, a cutover that was refused or timed out, or a failure that kept its output for
-- inspection (ValidationFailed, ApprovalTimedOut): the abort removes it.
local kept = phase == "Failed" and (status.reason == "ValidationFailed" or status.reason == "ApprovalTimedOut")
local abortable = before_cutover[phase] or (phase == "CuttingOver" and stalled) or kept
actions["abort"] = { ["disabled"] = not abortable or aborting }

-- rollback: within the rollback window after the cutover, unless one is already asked for and not handled.
local asked = annotations["kappa.dev/rollback"]
local pending = asked ~= nil and asked ~= (status.handledRequests or {}).rollback
actions["rollback"] = { ["disabled"] = phase ~= "Observing" or pending }
return actions
