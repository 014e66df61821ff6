"""Data flows one way: a module imports only modules to its left in ``ORDER``.

Every ``inl_sim/*.py`` is parsed with ``ast``; module-level and function-level imports
both count (a lazy import is still a dependency).  The package ``__init__`` is exempt:
it exposes the API lazily.  A module missing from ``ORDER`` fails the test, so a new
module is placed in the flow on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "inl_sim"

ORDER = ("errors", "spec", "scenario", "information", "curves", "topofile", "network", "routing", "data", "coding",
         "gating", "modules", "links", "accounting", "engine", "metrics", "results", "experiment", "study",
         "ratecurve", "survey", "figures", "report", "cli")
RANK = {name: i for i, name in enumerate(ORDER)}
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def imported_modules(source: str, known: set[str]) -> set[str]:
    """Names X of every ``inl_sim.X`` a module imports, anywhere in its body.

    Handles ``import inl_sim.X``, ``from inl_sim.X import y``, ``from inl_sim import X``
    (X a module; other names come from the exempt ``__init__``) and relative imports.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "inl_sim" and len(parts) > 1:
                    found.add(parts[1])
        elif isinstance(node, ast.ImportFrom):
            parts = (node.module or "").split(".") if node.module else []
            if node.level > 0:
                parts = ["inl_sim", *parts]
            if not parts or parts[0] != "inl_sim":
                continue
            if len(parts) > 1:
                found.add(parts[1])
            else:
                found.update(alias.name for alias in node.names if alias.name in known)
    return found


def test_the_parser_sees_every_import_form() -> None:
    source = (
        "import os\nimport inl_sim.routing\nfrom inl_sim.network import Network\n"
        "from inl_sim import errors, __version__\nfrom . import scenario\nfrom .links import Channel\n"
        "def lazy():\n    from inl_sim.report import build_report\n    import inl_sim.cli as c\n"
        "class K:\n    def m(self):\n        from inl_sim.engine import Engine\n"
    )
    known = {"routing", "network", "errors", "scenario", "links", "report", "cli", "engine"}
    assert imported_modules(source, known) == known


def test_every_module_is_placed_in_the_order() -> None:
    unplaced = [m for m in MODULES if m not in RANK]
    assert not unplaced, (f"inl_sim/{', '.join(unplaced)}.py not in the import order; add it to ORDER in "
                          "tests/test_import_direction.py where data flows (a module may only import those "
                          "to its left)")


@pytest.mark.parametrize("module", MODULES)
def test_imports_flow_downstream_only(module: str) -> None:
    if module not in RANK:
        pytest.fail(f"inl_sim/{module}.py is not placed in the import order; add it to ORDER in "
                    "tests/test_import_direction.py (a module may only import modules to its left)")
    source = (PACKAGE / f"{module}.py").read_text(encoding="utf-8")
    imports = imported_modules(source, set(MODULES) | set(ORDER)) - {module}
    unplaced = sorted(i for i in imports if i not in RANK)
    assert not unplaced, f"{module} imports {unplaced}, which are not placed in ORDER"
    upstream = sorted((i for i in imports if RANK[i] > RANK[module]), key=RANK.__getitem__)
    assert not upstream, (f"inl_sim/{module}.py imports {', '.join(upstream)}, to its right in the data flow "
                          f"{' -> '.join(ORDER)}; move the shared code left or invert the dependency")
