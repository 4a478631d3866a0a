"""One root for every error: no exception class of ours outside ``RidethroughError``, and
every one drawn in docs/errors.md ("The error tree").

Read from the source (``ast``), not by importing every module: optional dependencies
(llama.cpp, the embedder) must not decide what this test sees.
"""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "ridethrough"

# Classes waiting for a one-line change of base while another change edits their module
# (empty: every class is under the root).
PENDING: set[str] = set()


def _base_name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def exception_classes() -> dict[str, list[str]]:
    """Every class in src whose bases reach a builtin exception: name → base names."""
    bases: dict[str, list[str]] = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = [_base_name(b) for b in node.bases]

    def is_exception(name: str, seen: frozenset[str] = frozenset()) -> bool:
        builtin = getattr(builtins, name, None)
        if isinstance(builtin, type) and issubclass(builtin, BaseException):
            return True
        return name not in seen and any(is_exception(b, seen | {name})
                                        for b in bases.get(name, []))

    return {n: b for n, b in bases.items() if is_exception(n)}


def under_root(name: str, classes: dict[str, list[str]]) -> bool:
    return name == "RidethroughError" or any(under_root(b, classes)
                                             for b in classes.get(name, []) if b in classes)


def test_every_exception_class_has_the_one_root() -> None:
    classes = exception_classes()
    outside = {n for n in classes if not under_root(n, classes)}
    pending = outside & PENDING | {n for n in outside if any(b in PENDING for b in classes[n])}
    assert outside - pending == set(), "exception classes outside RidethroughError"


def test_the_tree_in_docs_draws_every_exception_class() -> None:
    doc = (ROOT / "docs" / "errors.md").read_text()
    tree = doc.split("## The error tree", 1)[1].split("```")[1]
    drawn = {line.split("─ ", 1)[-1].split()[0] for line in tree.splitlines()
             if line.strip() and not line.strip().startswith("│")}
    drawn |= {line.split("─ ", 1)[1].split()[0] for line in tree.splitlines() if "─ " in line}
    assert set(exception_classes()) - drawn == set(), "add them to docs/errors.md"
