"""Every event reason the operator can emit is in docs/events.md's table, and every reason in that table is
emitted somewhere: the table and the code cannot drift.

The reasons are found by reading the code (an AST walk over operator/kappa), not by running it. An emission
is one of:
- `Event("Normal" | "Warning", reason, message)` (machines/decision.py; the controllers post them);
- `kopf.event(body, type=..., reason=..., message=...)`;
- `once(status, reason, message)` (controllers/status.py: a Warning when a stall begins).
A reason that is not a string literal is followed to the literals it can be: an `x if c else y`, a local
assigned a literal or a tuple returned by a function of the package, or a parameter (every call of that
function, across the package, is read). What still cannot be followed must be named in DYNAMIC, with where
its values come from; a new one fails the test until it is.
"""

from __future__ import annotations

import ast
import functools
import re
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kappa.api.replayrun import ReplayPhase
from kappa.controllers.cluster import CONNECTION_REASONS

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "operator" / "kappa"
TABLE = ROOT / "docs" / "events.md"
KINDS = ("StreamJob", "ReplayRun", "MaterializedView")

# Which kind's events a file's literals are: a reason is attributed to where its literal is written.
KIND_OF_FILE = {
    "controllers/streamjob/__init__.py": "StreamJob",
    "controllers/streamjob/reconcile.py": "StreamJob",
    "controllers/streamjob/observe.py": "StreamJob",
    "controllers/streamjob/deploy.py": "StreamJob",
    "controllers/streamjob/finalize.py": "StreamJob",
    "machines/streamjob.py": "StreamJob",
    "controllers/streamjob/replay.py": "StreamJob",
    "controllers/streamjob/savepoints.py": "StreamJob",
    "controllers/streamjob/canary.py": "StreamJob",
    "machines/upgrade.py": "StreamJob",
    "machines/savepoint_upgrade.py": "StreamJob",
    "machines/upgrade_requests.py": "StreamJob",
    "machines/canary.py": "StreamJob",
    "controllers/replayrun/reconcile.py": "ReplayRun",
    "controllers/replayrun/actions.py": "ReplayRun",
    "controllers/replayrun/cleanup.py": "ReplayRun",
    "machines/replay_cleanup.py": "ReplayRun",
    "machines/replay.py": "ReplayRun",
    "machines/replay_phases.py": "ReplayRun",
    "machines/replay_abort.py": "ReplayRun",
    "controllers/materializedview/__init__.py": "MaterializedView",
    "controllers/materializedview/reconcile.py": "MaterializedView",
    "controllers/materializedview/retention.py": "MaterializedView",
    "machines/view_switch.py": "MaterializedView",
}
KIND_OF_FUNCTION = {
    ("machines/intake.py", "intake_streamjob"): ("StreamJob",),
    ("machines/intake.py", "intake_replayrun"): ("ReplayRun",),
    ("machines/intake.py", "intake_materializedview"): ("MaterializedView",),
    ("machines/intake.py", "_parse"): KINDS,  # an invalid spec, of any kind
}
# Reasons no literal names: (file, the reason's expression) → (kind, the reasons it can be).
DYNAMIC: dict[tuple[str, str], tuple[str, frozenset[str]]] = {
    # "every transition is an event": a ReplayRun phase entered with no event of its own is said by its name.
    # Pending is where a run begins, never a phase it enters.
    ("controllers/replayrun/reconcile.py", "decision.state.phase"): (
        "ReplayRun",
        frozenset(typing.get_args(ReplayPhase)) - {"Pending"},
    ),
    # The Kafka connection cannot be built or is refused (controllers/cluster.py KafkaConnectionError).
    ("controllers/streamjob/observe.py", "exc.reason"): ("StreamJob", CONNECTION_REASONS),
    # A replay upgrade's stall (machines/streamjob.replay_step), said once as it begins.
    ("controllers/streamjob/reconcile.py", "why.reason"): ("StreamJob", frozenset({"ReplayFailed"})),
    ("controllers/replayrun/reconcile.py", "exc.reason"): ("ReplayRun", CONNECTION_REASONS),
    ("controllers/materializedview/reconcile.py", "exc.reason"): ("MaterializedView", CONNECTION_REASONS),
}
# Where an event is passed on, not made: its reason is the one of an emission found elsewhere.
PLUMBING = {
    ("controllers/status.py", "post_events"),
    ("controllers/status.py", "once"),  # its reasons are those of its calls, emissions of their own
}


@dataclass(frozen=True)
class Emitted:
    kind: str
    reason: str
    type: str
    where: str


class Unresolved(Exception):
    pass


@dataclass
class Module:
    path: str
    tree: ast.Module
    parents: dict[ast.AST, ast.AST]


def _modules() -> list[Module]:
    found = []
    for file in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(file.read_text(), str(file))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        found.append(Module(str(file.relative_to(PACKAGE)), tree, parents))
    return found


MODULES = _modules()
FUNCTIONS: dict[str, list[tuple[Module, ast.FunctionDef | ast.AsyncFunctionDef]]] = {}
for _m in MODULES:
    for _node in ast.walk(_m.tree):
        if isinstance(_node, ast.FunctionDef | ast.AsyncFunctionDef):
            FUNCTIONS.setdefault(_node.name, []).append((_m, _node))


def _enclosing(module: Module, node: ast.AST) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    while node in module.parents:
        node = module.parents[node]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return node
    return None


def _callee(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _kinds(module: Module, node: ast.AST) -> tuple[str, ...]:
    func = _enclosing(module, node)
    while func is not None:
        if (module.path, func.name) in KIND_OF_FUNCTION:
            return KIND_OF_FUNCTION[(module.path, func.name)]
        func = _enclosing(module, func)
    if module.path not in KIND_OF_FILE:
        line = getattr(node, "lineno", "?")
        raise Unresolved(f"{module.path}:{line}: which kind's events are these? (KIND_OF_FILE)")
    return (KIND_OF_FILE[module.path],)


def _argument(call: ast.Call, params: list[str], name: str, method: bool) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    index = params.index(name) - (1 if method else 0)
    return call.args[index] if 0 <= index < len(call.args) else None


def resolve(
    module: Module, expr: ast.expr, seen: frozenset[int] = frozenset()
) -> Iterator[tuple[Module, ast.AST, str]]:
    """The literals a reason expression can be, each with the module and node it is written at."""
    if id(expr) in seen:
        return
    seen = seen | {id(expr)}
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        yield module, expr, expr.value
        return
    if isinstance(expr, ast.IfExp):
        yield from resolve(module, expr.body, seen)
        yield from resolve(module, expr.orelse, seen)
        return
    func = _enclosing(module, expr)
    if isinstance(expr, ast.Name) and func is not None:
        params = [a.arg for a in [*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs]]
        if expr.id in params:
            method = bool(params) and params[0] in ("self", "cls")
            private = func.name.startswith("_")  # called in its own module only
            calls = [
                (m, node)
                for m in ([module] if private else MODULES)
                for node in ast.walk(m.tree)
                if isinstance(node, ast.Call) and _callee(node) == func.name
            ]
            if not calls:
                raise Unresolved(f"{module.path}:{expr.lineno}: {func.name}() is never called")
            for m, call in calls:
                arg = _argument(call, params, expr.id, method)
                if arg is None:
                    raise Unresolved(f"{m.path}:{call.lineno}: {func.name}() without {expr.id}")
                yield from resolve(m, arg, seen)
            return
        assigned = False
        for node in ast.walk(func):
            if not isinstance(node, ast.Assign) or _enclosing(module, node) is not func:
                continue
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == expr.id:
                    assigned = True
                    yield from resolve(module, node.value, seen)
                elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Call):
                    names = [t.id if isinstance(t, ast.Name) else None for t in target.elts]
                    if expr.id in names:
                        assigned = True
                        yield from _returned(node.value, names.index(expr.id), seen)
        if assigned:
            return
    raise Unresolved(f"{module.path}:{expr.lineno}: {ast.unparse(expr)}")


def _returned(call: ast.Call, index: int, seen: frozenset[int]) -> Iterator[tuple[Module, ast.AST, str]]:
    """Element `index` of the tuples a function of the package returns (None: no reason, nothing said)."""
    name = _callee(call)
    defs = FUNCTIONS.get(name or "", [])
    if not defs:
        raise Unresolved(f"{name}() is not a function of the package")
    for m, func in defs:
        for node in ast.walk(func):
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple):
                element = node.value.elts[index]
                if isinstance(element, ast.Constant) and element.value is None:
                    continue
                yield from resolve(m, element, seen)


def _literal(expr: ast.expr | None) -> str | None:
    return expr.value if isinstance(expr, ast.Constant) and isinstance(expr.value, str) else None


def _sites() -> Iterator[tuple[Module, ast.Call, ast.expr | None, str | None]]:
    """Every emission: (module, call, reason expression, type) — type None when not a literal."""
    for module in MODULES:
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.Call):
                continue
            func = _enclosing(module, node)
            if func is not None and (module.path, func.name) in PLUMBING:
                continue
            callee = _callee(node)
            if callee == "Event" and isinstance(node.func, ast.Name) and len(node.args) >= 2:
                yield module, node, node.args[1], _literal(node.args[0])
            elif (
                callee == "event"
                and isinstance(node.func, ast.Attribute)
                and ast.unparse(node.func) == "kopf.event"
            ):
                kw = {k.arg: k.value for k in node.keywords}
                yield module, node, kw.get("reason"), _literal(kw.get("type"))
            elif callee == "once" and isinstance(node.func, ast.Name) and len(node.args) >= 2:
                yield module, node, node.args[1], "Warning"


@functools.cache
def emitted() -> frozenset[Emitted]:
    found: set[Emitted] = set()
    for module, call, reason, type_ in _sites():
        where = f"{module.path}:{call.lineno}"
        assert type_ in ("Normal", "Warning"), f"{where}: the event type is not a literal Normal or Warning"
        assert reason is not None, f"{where}: an event without a reason"
        key = (module.path, ast.unparse(reason))
        if key in DYNAMIC:
            kind, reasons = DYNAMIC[key]
            found |= {Emitted(kind, r, type_, where) for r in reasons}
            continue
        for at_module, at, value in resolve(module, reason):
            for kind in _kinds(at_module, at):
                found.add(Emitted(kind, value, type_, where))
    return frozenset(found)


ROW = re.compile(r"^\|\s*(StreamJob|ReplayRun|MaterializedView)\s*\|\s*`(\w+)`\s*\|\s*([A-Za-z/ ]+?)\s*\|")


def documented() -> dict[tuple[str, str, str], str]:
    """(kind, reason, type) → the row, from docs/events.md's one table."""
    rows: dict[tuple[str, str, str], str] = {}
    for line in TABLE.read_text().splitlines():
        match = ROW.match(line)
        if not match:
            continue
        kind, reason, types = match.groups()
        for type_ in types.split("/"):
            key = (kind, reason, type_.strip())
            assert key not in rows, f"{key} is in the table twice"
            rows[key] = line
    return rows


def test_the_walk_finds_the_emissions_it_must() -> None:
    """The walk itself: a literal, a parameter followed to its calls, an assignment, a returned tuple and a
    dynamic reason are each found, so that an empty result cannot pass for agreement."""
    found = {(e.kind, e.reason, e.type) for e in emitted()}
    assert ("StreamJob", "UpgradeSucceeded", "Normal") in found  # Event literal, savepoint_upgrade.py
    assert ("StreamJob", "FinalSavepoint", "Normal") in found  # kopf.event
    assert ("StreamJob", "FinalSavepointFailed", "Warning") in found  # reason = x if c else y
    assert ("MaterializedView", "AmbiguousJob", "Warning") in found  # once()
    assert ("MaterializedView", "Pinned", "Normal") in found  # _accept(seen, reason, ...) → its calls
    assert ("ReplayRun", "PreflightFailed", "Warning") in found  # fail(..., reason, ...) → its calls
    assert ("ReplayRun", "KafkaUnreachable", "Warning") in found  # reason, why = outage(...)
    assert ("ReplayRun", "Validating", "Normal") in found  # a phase entered with no event of its own
    assert {"InvalidSpec", "Accepted"} <= {r for k, r, _ in found if k == "MaterializedView"}


def test_every_reason_emitted_is_in_the_table() -> None:
    rows = documented()
    missing = sorted(
        f"{e.kind} {e.reason} ({e.type}) from {e.where}"
        for e in emitted()
        if (e.kind, e.reason, e.type) not in rows
    )
    assert not missing, "add to docs/events.md:\n" + "\n".join(missing)


def test_every_reason_in_the_table_is_emitted() -> None:
    found = {(e.kind, e.reason, e.type) for e in emitted()}
    stale = sorted(f"{k} {r} ({t})" for k, r, t in documented() if (k, r, t) not in found)
    assert not stale, "docs/events.md lists reasons nothing emits:\n" + "\n".join(stale)


def test_every_warning_says_what_to_do() -> None:
    for (kind, reason, type_), row in documented().items():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        assert len(cells) == 5, f"{kind} {reason}: kind | reason | type | when | what to do"
        assert cells[3], f"{kind} {reason}: when is it emitted?"
        if type_ == "Warning":
            assert cells[4] and cells[4] != "—", f"{kind} {reason}: a Warning says what to do"


@pytest.mark.parametrize("kind", KINDS)
def test_the_table_covers_each_kind(kind: str) -> None:
    assert any(k == kind for k, _, _ in documented()), kind


def test_the_readme_links_the_table() -> None:
    assert "docs/events.md" in (ROOT / "README.md").read_text()
