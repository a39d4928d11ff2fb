-- Health of a kappa.dev StreamJob for Argo CD (argocd-cm: resource.customizations.health.kappa.dev_StreamJob).
-- Argo CD runs argocd-cm scripts with the base, table and package libraries and a safe os only: no string or
-- math library here. Read from the operator's status: phase, and the kstatus conditions Ready, Reconciling and
-- Stalled (Stalled=True: it cannot go on without a human).
--   Running (Ready)                       Healthy
--   Suspended (spec.suspend, at rest)     Suspended
--   Stalled: a failed upgrade, a rollback done, a savepoint failed, a bad spec   Degraded
--   deploying, upgrading, canary, rolling back, a rollback asked for, or status behind   Progressing
local hs = {}

local function condition(status, type)
  for _, c in ipairs(status.conditions or {}) do
    if c.type == type then
      return c
    end
  end
  return nil
end

-- "Phase (Reason): message", the reason left out when it repeats the phase.
local function describe(phase, c)
  local text = phase
  if c == nil then
    return text
  end
  if c.reason ~= nil and c.reason ~= "" and c.reason ~= phase then
    text = text .. " (" .. c.reason .. ")"
  end
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

local status = obj.status
if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile the StreamJob"
  return hs
end
local generation = tonumber(obj.metadata.generation)
local observed = tonumber(status.observedGeneration)
if generation ~= nil and observed ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation .. " (status is of " .. observed .. ")"
  return hs
end

local phase = status.phase or "Pending"
local ready = condition(status, "Ready")
local stalled = condition(status, "Stalled")
local ready_true = ready ~= nil and ready.status == "True"

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(phase, stalled)
  return hs
end
-- A rollback asked for (kappa.dev/rollback) and not yet echoed in status.handledRequests.
local asked = (obj.metadata.annotations or {})["kappa.dev/rollback"]
local handled = (status.handledRequests or {}).rollback
if asked ~= nil and asked ~= handled then
  hs.status = "Progressing"
  hs.message = phase .. ": rollback requested (kappa.dev/rollback=" .. asked .. ")"
  return hs
end
if phase == "Suspended" and ready_true then
  hs.status = "Suspended"
  hs.message = describe(phase, ready)
  return hs
end
if ready_true then
  hs.status = "Healthy"
  hs.message = describe(phase, ready)
  return hs
end
hs.status = "Progressing"
hs.message = describe(phase, ready)
return hs
