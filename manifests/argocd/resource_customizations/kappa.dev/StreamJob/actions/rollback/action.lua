-- Sets kappa.dev/rollback to a new request id, as `kubectl kappa rollback sj` does; the operator echoes it in
-- status.handledRequests.rollback. Annotations only: spec is never written.
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["kappa.dev/rollback"] = os.date("!%Y%m%dT%H%M%SZ") .. "-argocd"
return obj
