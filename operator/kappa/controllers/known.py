"""The StreamJobs as this operator last read or wrote them, so that a look need not GET a job the watch shows
unchanged since.

A look needs the job as it is: a status it wrote a moment ago and does not see would have it decide again
what it already decided. So it used to GET the job at every look: at 1,000 jobs, about 2 GETs a job in a
create or a restart, and one per look while a version waits for its first checkpoint. Now each GET's answer
and each status write's answer is kept, by resourceVersion, and the StreamJob watch (controllers/watches.py
`wake_on_request`) notes the resourceVersion it last showed of each job. When the two are the same, nobody
has written the job since this operator last saw it whole, and the look takes the kept copy. Otherwise (a
write of anyone else, Kopf's own patches, a watch that has not yet shown our write) it GETs, as before.

resourceVersions are compared for equality only, as the API's contract allows. A change made after the
look read the copy arrives as a watch event and wakes the job again, as with a GET. The copies are kept as
compact JSON, a few KiB a job, and decoded per look (tens of microseconds).
"""

from __future__ import annotations

import json
from typing import Any

Key = tuple[str, str]
"""(namespace, name)"""


class Known:
    """Per StreamJob: the resourceVersion the watch last showed, and the object last read or written whole."""

    def __init__(self) -> None:
        self._watched: dict[Key, str] = {}
        self._bodies: dict[Key, tuple[str, bytes]] = {}

    def watched(self, key: Key, resource_version: str | None) -> None:
        """The watch showed this version of the job (at start, or since)."""
        if resource_version:
            self._watched[key] = resource_version

    def remember(self, obj: dict[str, Any]) -> None:
        """The job whole, as the API server returned it (a GET, or the answer to a write)."""
        meta = obj.get("metadata") or {}
        version = meta.get("resourceVersion")
        if version:
            key = (str(meta.get("namespace")), str(meta.get("name")))
            self._bodies[key] = (str(version), json.dumps(obj, separators=(",", ":")).encode())

    def current(self, key: Key) -> dict[str, Any] | None:
        """A copy of the job when the watch shows the version last remembered; else None (then GET it)."""
        kept = self._bodies.get(key)
        if kept is None or self._watched.get(key) != kept[0]:
            return None
        found: dict[str, Any] = json.loads(kept[1])
        return found

    def forget(self, key: Key) -> None:
        self._watched.pop(key, None)
        self._bodies.pop(key, None)
