-- Sets kappa.dev/approve to a new request id, as `kubectl kappa approve` does; the operator echoes it in
-- status.handledRequests.approve. Annotations only: spec is never written.
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["kappa.dev/approve"] = os.date("!%Y%m%dT%H%M%SZ") .. "-argocd"
return obj
