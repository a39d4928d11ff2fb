"""The StreamJobs as the operator last knew them whole, so that a look need not GET a job.

A look needs the job as it is: a status it wrote a moment ago and does not see would have it decide again
what it already decided. So it used to GET the job at every look: at 1,000 jobs, about 2 GETs a job in a
create or a restart, and one per look while a version waits for its first checkpoint. Now the operator keeps
one copy of each job, by resourceVersion, from three sources:
- the StreamJob watch (controllers/watches.py `wake_on_request`), whose events bring each version of the
  job, in order, the listing at start included;
- the answer to each status write of the operator's;
- the answer to a GET, when a look had to make one.

A write's answer is newer than the watch until the watch shows that same version: until then, the watch's
bodies are older than what the operator wrote and are not kept (an event can also be skipped: Kopf hands
over only the latest of a quick burst). A look takes the copy when the watch shows its version; otherwise
(the watch has not caught up with a write, or skipped it) it GETs, and the GET's answer is kept the same
way. So a look never sees less than the operator last wrote, as with a GET every time. A change made after
the look read the copy arrives as a watch event and wakes the job again, as before.

resourceVersions are compared for equality only, as the API's contract allows. The copies are kept as
compact JSON, a few KiB a job, and decoded per look (tens of microseconds).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

Key = tuple[str, str]
"""(namespace, name)"""


def _version(obj: Mapping[str, Any]) -> str | None:
    found = (obj.get("metadata") or {}).get("resourceVersion")
    return str(found) if found else None


class Known:
    """Per StreamJob: the resourceVersion the watch last showed, and the copy kept."""

    def __init__(self) -> None:
        self._watched: dict[Key, str] = {}
        self._bodies: dict[Key, tuple[str, bytes]] = {}
        self._ahead: dict[Key, str] = {}
        """Jobs whose copy came from a write or a GET that the watch has not shown yet: its version."""

    def watched(self, key: Key, obj: Mapping[str, Any]) -> None:
        """The watch showed this version of the job (listed at start, or an event since)."""
        version = _version(obj)
        if version is None:
            return
        self._watched[key] = version
        ahead = self._ahead.get(key)
        if ahead is None:
            self._keep(key, version, obj)  # in step: nothing kept is newer than the watch
        elif ahead == version:
            del self._ahead[key]  # the watch caught up with what is kept

    def remember(self, obj: Mapping[str, Any]) -> None:
        """The job whole as the API server answered a GET or a write: newer than the watch, unless the watch
        has shown that version already."""
        version = _version(obj)
        meta = obj.get("metadata") or {}
        if version is None:
            return
        key = (str(meta.get("namespace")), str(meta.get("name")))
        self._keep(key, version, obj)
        if self._watched.get(key) == version:
            self._ahead.pop(key, None)
        else:
            self._ahead[key] = version

    def current(self, key: Key) -> dict[str, Any] | None:
        """A copy of the job when the watch shows the version kept; else None (then GET it)."""
        kept = self._bodies.get(key)
        if kept is None or self._watched.get(key) != kept[0]:
            return None
        found: dict[str, Any] = json.loads(kept[1])
        return found

    def forget(self, key: Key) -> None:
        self._watched.pop(key, None)
        self._bodies.pop(key, None)
        self._ahead.pop(key, None)

    def _keep(self, key: Key, version: str, obj: Mapping[str, Any]) -> None:
        """Kept less server-side apply's field ownership, which no look reads (most of a job's metadata)."""
        slim = dict(obj)
        meta = slim.get("metadata")
        if isinstance(meta, Mapping) and "managedFields" in meta:
            slim["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
        self._bodies[key] = (version, json.dumps(slim, separators=(",", ":")).encode())
