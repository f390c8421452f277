"""Blueprints stand alone: none imports another, so each surface can change on its own.

A blueprint module is one that makes a `Blueprint(...)`; shared view helpers (forms,
extensions, device, navigation, downloads, urls, emails, ...) make none and may be imported.
Read from the source with `ast`, so an import anywhere in a module counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "blueprints"


def _tree(name: str) -> ast.Module:
    return ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8"))


def _module_names() -> list[str]:
    return sorted(path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__")


def _makes_a_blueprint(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name | ast.Attribute)
        and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr) == "Blueprint"
        for node in ast.walk(tree)
    )


def _imported_blueprint_modules(tree: ast.Module) -> set[str]:
    """Return the names of the modules in blueprints/ that a module imports."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "blueprints" and len(parts) > 1:
                    names.add(parts[1])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[0] != "blueprints":
                continue
            if len(parts) > 1:
                names.add(parts[1])
            else:  # from blueprints import device
                names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            # from . import x / from .x import y: relative to the blueprints package
            if node.module:
                names.add(node.module.split(".")[0])
            else:
                names.update(alias.name for alias in node.names)
    return names


def test_the_rule_sees_the_blueprints() -> None:
    blueprints = {name for name in _module_names() if _makes_a_blueprint(_tree(name))}

    # The rule is only as good as its reading of the modules: it must find the surfaces.
    assert {"badge", "cli", "maillinks", "me", "organiser", "public"} <= blueprints
    assert not {"forms", "extensions", "downloads", "converters"} & blueprints
    assert _imported_blueprint_modules(ast.parse("from blueprints.badge import view")) == {"badge"}
    assert _imported_blueprint_modules(ast.parse("from blueprints import device, me")) == {
        "device",
        "me",
    }
    assert _imported_blueprint_modules(ast.parse("import blueprints.cli")) == {"cli"}
    assert _imported_blueprint_modules(ast.parse("from .organiser import bp")) == {"organiser"}


def test_no_module_in_blueprints_imports_a_blueprint_module() -> None:
    blueprints = {name for name in _module_names() if _makes_a_blueprint(_tree(name))}

    crossings = {
        f"{name} imports {imported}"
        for name in _module_names()
        for imported in _imported_blueprint_modules(_tree(name)) & blueprints
        if imported != name
    }

    assert crossings == set()
