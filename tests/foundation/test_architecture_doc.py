"""docs/architecture.md lists every module of the package, and names no Python file that does not exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pitbox

PACKAGE = Path(pitbox.__file__).parent
ROOT = PACKAGE.parent.parent
DOC = ROOT / "docs" / "architecture.md"


def _holds_code(path: Path) -> bool:
    """A module with something in it: any `__init__.py` that is more than a docstring and imports."""
    if path.name != "__init__.py":
        return True
    statements = ast.parse(path.read_text(), str(path)).body
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Assign | ast.AnnAssign)
        for node in statements
    )


def _modules() -> set[str]:
    return {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if "__pycache__" not in path.parts and _holds_code(path)
    }


def _listed() -> list[str]:
    """The paths the Modules section lists, one `- `path` — …` line each."""
    text = DOC.read_text()
    section = text[text.index("\n## Modules\n") : text.index("\n## Decisions\n")]
    return re.findall(r"^- `([\w/]+\.py)` — \S", section, flags=re.MULTILINE)


def test_the_modules_section_lists_every_module_once_and_nothing_else() -> None:
    listed = _listed()
    assert len(listed) == len(set(listed)), "a module is listed twice"
    modules = _modules()
    assert sorted(modules - set(listed)) == [], "modules missing from docs/architecture.md"
    assert sorted(set(listed) - modules) == [], "docs/architecture.md lists modules that do not exist"


def test_every_python_file_the_page_names_exists() -> None:
    names = set(re.findall(r"`([\w./-]+\.py)`", DOC.read_text()))
    file_names = {path.name for path in PACKAGE.rglob("*.py")}
    missing = [
        name
        for name in sorted(names)
        if not (PACKAGE / name).is_file()
        and not (ROOT / name).is_file()
        and not ("/" not in name and name in file_names)
    ]
    assert missing == []


def test_the_check_sees_a_module_the_list_lacks() -> None:
    # The list is read from the page, the modules from the disk: the two sets are independent.
    assert "auth/credentials.py" in _modules() and "auth/credentials.py" in _listed()
    assert "wire.py" in _modules()
    assert "no/such_module.py" not in _modules()
