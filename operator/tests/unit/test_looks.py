"""What every kind's looks share (controllers/looks.py): one reconciler per operator on Kopf's memo, two
looks at one object never side by side, and a look in a namespace being deleted ends quietly."""

from __future__ import annotations

import asyncio
from copy import copy as copy_of
from dataclasses import dataclass
from typing import Any

import kopf

from kappa.adapters.kube import NamespaceTerminating
from kappa.controllers.looks import Locks, OfObject, look_locked, one_per_operator


def test_one_reconciler_per_operator_shared_by_the_objects_copies_of_the_memo() -> None:
    memo = kopf.Memo()
    built = one_per_operator(memo, "views", object)
    copy = copy_of(memo)  # what Kopf hands each object's handlers
    assert one_per_operator(copy, "views", object) is built


def test_looks_at_one_object_take_turns_and_others_go_beside_them() -> None:
    async def story() -> list[str]:
        locks: Locks = {}
        said: list[str] = []

        async def look(namespace: str, name: str) -> str:
            said.append(f"start {name}")
            await asyncio.sleep(0.01)
            said.append(f"end {name}")
            return name

        done = await asyncio.gather(
            look_locked(locks, "MaterializedView", "ns", "a", look),
            look_locked(locks, "MaterializedView", "ns", "a", look),
            look_locked(locks, "MaterializedView", "ns", "b", look),
        )
        assert done == ["a", "a", "b"]
        return said

    said = asyncio.run(story())
    first_a, second_a = said.index("start a"), len(said) - 1 - said[::-1].index("start a")
    assert said.index("end a") < second_a  # the second look at a began after the first ended
    assert said.index("start b") < said.index("end a", first_a)  # b did not wait for a


def test_a_look_in_a_namespace_being_deleted_ends_quietly() -> None:
    async def look(namespace: str, name: str) -> str:
        raise NamespaceTerminating(namespace)

    assert asyncio.run(look_locked({}, "MaterializedView", "gone", "a", look)) is None


def test_the_namespace_and_name_of_the_object_a_look_loaded() -> None:
    @dataclass(frozen=True)
    class Seen(OfObject):
        obj: dict[str, Any]

    seen = Seen({"metadata": {"namespace": "ns", "name": "sessions", "generation": 3}})
    assert (seen.namespace, seen.name, seen.generation) == ("ns", "sessions", 3)
