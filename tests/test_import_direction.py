"""Data flows one way, in wings: a module imports only its own wing and wings to its left.

The wings, in order, are ``errors`` (the exception family), ``scenario``, ``network``,
``learning``, ``sim``, ``study``, ``report`` and ``cli`` (see ``shared/ARCHITECTURE.md``).
Every ``inl_sim/**/*.py`` is parsed with ``ast``; module-level and function-level
imports both count (a lazy import is still a dependency).  The package ``__init__`` is
exempt: it exposes the API lazily.  A top-level module or wing missing from ``WINGS``
fails the test, so a new wing is placed in the flow on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "inl_sim"

WINGS = ("errors", "scenario", "network", "learning", "sim", "study", "report", "cli")
RANK = {name: i for i, name in enumerate(WINGS)}
FILES = sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")


def wing_of(path: Path) -> str:
    """``inl_sim/network/routing.py`` -> ``network``; ``inl_sim/cli.py`` -> ``cli``."""
    rel = path.relative_to(PACKAGE).parts
    return rel[0] if len(rel) > 1 else Path(rel[0]).stem


def imported_wings(source: str, own: tuple[str, ...] = ()) -> set[str]:
    """Wings X of every ``inl_sim.X...`` a module imports, anywhere in its body.

    Handles ``import inl_sim.X.y``, ``from inl_sim.X.y import z``, ``from inl_sim import X``
    and relative imports (resolved against ``own``, the importing module's package path
    below ``inl_sim``).  ``from inl_sim import __version__`` names no wing.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "inl_sim" and len(parts) > 1:
                    found.add(parts[1])
        elif isinstance(node, ast.ImportFrom):
            parts = node.module.split(".") if node.module else []
            if node.level > 0:
                base = list(own[: len(own) - (node.level - 1)]) if node.level > 1 else list(own)
                parts = ["inl_sim", *base, *parts]
            if not parts or parts[0] != "inl_sim":
                continue
            if len(parts) > 1:
                found.add(parts[1])
            else:
                found.update(a.name for a in node.names if a.name in RANK)
    return found


def test_the_parser_sees_every_import_form() -> None:
    source = (
        "import os\nimport inl_sim.network.routing\nfrom inl_sim.scenario import Scenario\n"
        "from inl_sim import errors, __version__\nfrom . import links\nfrom ..learning.modules import NodeModule\n"
        "def lazy():\n    from inl_sim.report.html import build_report\n    import inl_sim.cli as c\n"
        "class K:\n    def m(self):\n        from inl_sim.study.experiment import run\n"
    )
    assert imported_wings(source, own=("sim",)) == {"network", "scenario", "errors", "sim", "learning", "report",
                                                    "cli", "study"}


def test_every_wing_is_placed_in_the_order() -> None:
    unplaced = sorted({wing_of(f) for f in FILES} - set(RANK))
    assert not unplaced, (f"inl_sim/{', '.join(unplaced)} is not a known wing; add it to WINGS in "
                          "tests/test_import_direction.py where data flows, or move it into a wing")


def test_every_wing_says_what_lives_there() -> None:
    for wing in WINGS:
        init = PACKAGE / wing / "__init__.py"
        if init.exists():
            doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
            assert doc and "May import" in doc and "Lives here" in doc, f"{init} must say what lives there and what it may import"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_downstream_only(path: Path) -> None:
    wing = wing_of(path)
    own = path.relative_to(PACKAGE).parts[:-1]
    imports = imported_wings(path.read_text(encoding="utf-8"), own)
    unplaced = sorted(i for i in imports if i not in RANK)
    assert not unplaced, f"{path.name} imports {unplaced}, which are not wings in WINGS"
    upstream = sorted((i for i in imports if RANK[i] > RANK[wing]), key=RANK.__getitem__)
    assert not upstream, (f"inl_sim/{path.relative_to(PACKAGE)} ({wing}) imports {', '.join(upstream)}, to its right "
                          f"in the data flow {' -> '.join(WINGS)}; move the shared code left or invert the dependency")


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path: Path) -> None:
    n = path.read_text(encoding="utf-8").count("\n")
    assert n <= 340, f"{path.relative_to(PACKAGE)} has {n} lines; split it by responsibility (about 300 at most)"
