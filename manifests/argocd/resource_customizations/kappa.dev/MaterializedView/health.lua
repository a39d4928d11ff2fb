-- Health of a kappa.dev MaterializedView for Argo CD
-- (argocd-cm: resource.customizations.health.kappa.dev_MaterializedView).
-- Argo CD runs argocd-cm scripts with the base, table and package libraries and a safe os only: no string or
-- math library here. Read from the kstatus conditions Ready, Reconciling and Stalled the operator writes.
--   Ready (serving a version, or a pinned one)                         Healthy
--   Stalled (alias moved by hand, backend unavailable, switch failed)  Degraded
--   waiting for a first version, switching, or status behind           Progressing
local hs = {}

local function condition(status, type)
  for _, c in ipairs(status.conditions or {}) do
    if c.type == type then
      return c
    end
  end
  return nil
end

-- "Reason: message".
local function describe(c)
  if c == nil then
    return "Waiting for the operator to set conditions"
  end
  local text = c.reason or c.type
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

local status = obj.status
if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile the MaterializedView"
  return hs
end
local generation = tonumber(obj.metadata.generation)
local observed = tonumber(status.observedGeneration)
if generation ~= nil and observed ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation .. " (status is of " .. observed .. ")"
  return hs
end

local ready = condition(status, "Ready")
local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end
hs.status = "Progressing"
hs.message = describe(ready)
return hs
