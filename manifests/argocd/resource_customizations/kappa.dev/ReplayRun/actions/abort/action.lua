-- Sets kappa.dev/abort to a new request id, as `kubectl kappa abort` does; the operator echoes it in
-- status.handledRequests.abort. Annotations only: spec is never written.
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["kappa.dev/abort"] = os.date("!%Y%m%dT%H%M%SZ") .. "-argocd"
return obj
