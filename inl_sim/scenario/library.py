"""Shipped scenarios and topologies: package data under ``inl_sim/assets/``, found by name.

They live inside the package (not beside it in the checkout) so that a plain, non-editable
``pip install .`` or a wheel carries them: ``inl-sim run quickstart`` works from any
directory.  A path that exists always wins over a shipped name.
"""

from __future__ import annotations

from pathlib import Path

from inl_sim.errors import ScenarioError

__all__ = ["ASSET_DIR", "SCENARIO_DIR", "TOPOLOGY_DIR", "shipped_scenarios", "resolve_scenario",
           "describe_scenarios"]

ASSET_DIR = Path(__file__).resolve().parents[1] / "assets"
SCENARIO_DIR = ASSET_DIR / "scenarios"
TOPOLOGY_DIR = ASSET_DIR / "topologies"
_SUFFIXES = (".yaml", ".yml")


def shipped_scenarios() -> list[str]:
    """Names (file stems) of the scenarios shipped with the package, sorted."""
    if not SCENARIO_DIR.is_dir():
        return []
    return sorted(p.stem for p in SCENARIO_DIR.iterdir() if p.suffix in _SUFFIXES)


def resolve_scenario(source: str | Path) -> Path:
    """The scenario file a user means: an existing path, else a shipped scenario by name
    (``quickstart``, ``quickstart.yaml`` or ``scenarios/quickstart.yaml`` from a checkout).

    Raises
    ------
    ScenarioError
        When neither exists, listing the shipped names.
    """
    path = Path(source)
    if path.is_file():
        return path
    if path.is_dir():
        raise ScenarioError(f"{path}: is a folder, not a scenario file; give a .yaml file or a shipped name "
                            f"({', '.join(shipped_scenarios())})")
    stem = path.stem if path.suffix in _SUFFIXES else path.name
    if path.parent.name in ("", "scenarios") and stem in shipped_scenarios():
        return next(SCENARIO_DIR / f"{stem}{s}" for s in _SUFFIXES if (SCENARIO_DIR / f"{stem}{s}").is_file())
    shown = str(source) if len(str(source)) <= 120 else str(source)[:117] + "..."
    raise ScenarioError(f"{shown}: scenario file not found; give a path or a shipped name "
                        f"({', '.join(shipped_scenarios()) or 'none'}; see `inl-sim scenarios list`)")


def describe_scenarios() -> list[tuple[str, str]]:
    """(name, description) of every shipped scenario, read without building it."""
    from inl_sim.scenario.yamlsafe import load_yaml
    rows = []
    for name in shipped_scenarios():
        path = resolve_scenario(name)
        raw = load_yaml(path.read_text(encoding="utf-8"), str(path))
        text = raw.get("description", "") if isinstance(raw, dict) else ""
        rows.append((name, " ".join(str(text).split())))
    return rows
