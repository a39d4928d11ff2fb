-- Health of a kappa.dev ReplayRun for Argo CD (argocd-cm: resource.customizations.health.kappa.dev_ReplayRun).
-- Argo CD runs argocd-cm scripts with the base, table and package libraries and a safe os only: no string or
-- math library here. Read from the operator's status: phase, and the kstatus conditions Ready, Reconciling and
-- Stalled (Stalled=True: it cannot go on without a human).
--   AwaitingApproval                      Suspended (Progressing once kappa.dev/approve is set)
--   Succeeded (Ready)                     Healthy
--   Failed, Aborted, RolledBack (Stalled) Degraded, as is a refused cutover or a cleanup given up
--   any other phase, an abort asked for, or status behind   Progressing
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
  hs.message = "Waiting for the operator to reconcile the ReplayRun"
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
local annotations = obj.metadata.annotations or {}

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(phase, stalled)
  return hs
end
-- An abort asked for where the operator acts on it, and not acted on yet.
local abortable = {
  Pending = true, Preflight = true, Replaying = true, CatchingUp = true, Validating = true, AwaitingApproval = true,
  CuttingOver = true
}
if abortable[phase] and annotations["kappa.dev/abort"] ~= nil then
  hs.status = "Progressing"
  hs.message = phase .. ": abort requested (kappa.dev/abort=" .. annotations["kappa.dev/abort"] .. ")"
  return hs
end
if phase == "AwaitingApproval" then
  if annotations["kappa.dev/approve"] ~= nil then
    hs.status = "Progressing"
    hs.message = "AwaitingApproval: approved (kappa.dev/approve=" .. annotations["kappa.dev/approve"] .. "); cutting over next"
  else
    hs.status = "Suspended"
    hs.message = describe(phase, ready)
  end
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(phase, ready)
  if status.cleanup == "Pending" then
    hs.message = hs.message .. " (cleanup under way)"
  end
  return hs
end
hs.status = "Progressing"
hs.message = describe(phase, ready)
return hs
