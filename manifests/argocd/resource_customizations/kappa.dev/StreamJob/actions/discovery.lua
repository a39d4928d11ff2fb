-- Actions on a kappa.dev StreamJob. rollback sets the annotation `kubectl kappa rollback sj` sets, and nothing
-- else: spec is never written, so there is no drift from Git. The operator echoes the request in
-- status.handledRequests.rollback.
local actions = {}
local status = obj.status or {}
local upgrade = status.upgrade or {}
local annotations = obj.metadata.annotations or {}

-- rollback: at rest, to the previous version kept suspended at its savepoint (the window after an upgrade), or,
-- while a new version starts, back to the active one. The operator takes it in those two steps only.
local back_to = nil
if upgrade.step == "Idle" then
  back_to = upgrade.previousVersion
elseif upgrade.step == "Starting" then
  back_to = status.activeVersion
end
local asked = annotations["kappa.dev/rollback"]
local pending = asked ~= nil and asked ~= (status.handledRequests or {}).rollback
actions["rollback"] = {
  ["disabled"] = back_to == nil or upgrade.savepoint == nil or status.phase == "RollingBack" or pending
}
return actions
