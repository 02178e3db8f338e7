"""Arrows between layers: the server wiring (`pitbox.serving`) depends on nothing in the API layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pitbox

PACKAGE = Path(pitbox.__file__).parent


def _module_file(name: str) -> Path | None:
    """The source file of a `pitbox…` module, or None for modules outside the package."""
    if name != "pitbox" and not name.startswith("pitbox."):
        return None
    path = PACKAGE.joinpath(*name.split(".")[1:])
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return path / "__init__.py" if (path / "__init__.py").is_file() else None


def _imported(name: str) -> set[str]:
    """Every `pitbox…` module `name` imports (at any level: module, function, TYPE_CHECKING), and those."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        path = _module_file(current)
        if current in seen or path is None:
            continue
        seen.add(current)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                todo.append(node.module)
                todo += [f"{node.module}.{alias.name}" for alias in node.names]  # `from pitbox.api import ws`
    return seen - {name}


def test_serving_imports_nothing_from_the_api_layer() -> None:
    imported = _imported("pitbox.serving")
    assert "pitbox.services" in imported  # the walk does follow imports
    assert sorted(m for m in imported if m == "pitbox.api" or m.startswith("pitbox.api.")) == []
