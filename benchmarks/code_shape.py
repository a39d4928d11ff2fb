"""The figures of issue 10 (one controller shape), printed from the source: the longest functions in
controllers/, the files of operator/kappa over 400 lines, and the raw-dict reads of status in controllers/
(`.get("…")` calls in an expression that names `status`).

    .venv/bin/python benchmarks/code_shape.py [--top 10]

Lines are counted as Python's ast gives them (a function's first line to its last, docstring included).
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "operator" / "kappa"
CONTROLLERS = PACKAGE / "controllers"


def functions(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            end = node.end_lineno or node.lineno
            found.append((end - node.lineno + 1, f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"))
    return found


def status_gets(path: Path) -> int:
    """`.get("…")` calls whose receiver chain mentions status: status.get("x"), (obj.get("status") or
    {}).get("x"), self.status["a"].get("b")."""
    tree = ast.parse(path.read_text())
    count = 0
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr != "get":
            continue
        if not (node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            continue
        receiver = ast.unparse(node.func.value)
        if "status" in receiver.lower() or node.args[0].value == "status":
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    controllers = sorted(CONTROLLERS.glob("**/*.py"))
    longest = sorted((f for p in controllers for f in functions(p)), reverse=True)
    total = sum(len(p.read_text().splitlines()) for p in controllers)
    print(f"controllers/: {len(controllers)} files, {total} lines")
    print(f"longest functions in controllers/ (top {args.top}):")
    for lines, where in longest[: args.top]:
        print(f"  {lines:4d}  {where}")
    package = sorted(PACKAGE.glob("**/*.py"))
    big = sorted(((len(p.read_text().splitlines()), p) for p in package), reverse=True)
    print("files in operator/kappa over 400 lines:")
    for lines, path in big:
        if lines > 400:
            print(f"  {lines:4d}  {path.relative_to(ROOT)}")
    gets = {p: status_gets(p) for p in controllers}
    print(f'raw .get("…") reads of status in controllers/: {sum(gets.values())}')
    for path, n in sorted(gets.items(), key=lambda kv: -kv[1]):
        if n:
            print(f"  {n:4d}  {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
