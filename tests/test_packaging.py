"""A non-editable install works: the package, its data and its console script, from elsewhere.

The source tree (tracked files only) is copied to a temporary folder and installed with
``pip install --no-deps --no-build-isolation --target`` (no network, nothing of the
editable install involved); then ``inl-sim`` runs from an unrelated directory with only
that target on the path.  Before: a built wheel had no scenarios or topologies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import inl_sim
from inl_sim.scenario.library import SCENARIO_DIR, TOPOLOGY_DIR, describe_scenarios, resolve_scenario

from conftest import ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("pkg")
    tracked = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, check=True).stdout.decode().split("\0")
    source = base / "src"
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    target = base / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--target", str(target), str(source)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return target


def inl_sim_cli(target: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(target), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(target / "bin" / "inl-sim"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_installed_package_has_its_data_and_runs_from_elsewhere(installed: Path, tmp_path: Path) -> None:
    package = installed / "inl_sim"
    shipped = sorted(p.relative_to(ROOT / "inl_sim").as_posix() for p in (ROOT / "inl_sim" / "assets").rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts)
    assert shipped and all((package / name).is_file() for name in shipped), shipped
    assert (package / "py.typed").is_file()
    licenses = list(installed.glob("inl_sim-*.dist-info/**/LICENSE"))
    assert licenses and "MIT License" in licenses[0].read_text()

    version = inl_sim_cli(installed, "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"inl-sim {inl_sim.__version__}"
    listing = inl_sim_cli(installed, "scenarios", "list", cwd=tmp_path)
    assert listing.returncode == 0 and "quickstart" in listing.stdout and "dinl_paper" in listing.stdout
    topologies = inl_sim_cli(installed, "topologies", "list", cwd=tmp_path)
    assert "| mesh9.yaml | 9 | 27 | 0 | 8 |" in topologies.stdout, topologies.stdout + topologies.stderr
    out = tmp_path / "out"
    run = inl_sim_cli(installed, "run", "quickstart", "--set", "training.epochs=1", "--set", "data.n_train=128",
                      "--set", "data.n_test=64", "--out", str(out), "--no-progress", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "active links        8" in run.stdout and (out / "summary.json").is_file()
    resolved = (out / "scenario.resolved.yaml").read_text()
    assert str(package / "assets" / "topologies") in resolved or "mesh9" in resolved


def test_shipped_names_resolve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("quickstart", "quickstart.yaml", "scenarios/quickstart.yaml"):
        assert resolve_scenario(name) == SCENARIO_DIR / "quickstart.yaml"
    mine = tmp_path / "quickstart.yaml"
    mine.write_text("name: mine\ntopology: {generator: star, n_nodes: 3}\n", encoding="utf-8")
    assert resolve_scenario("quickstart.yaml") == Path("quickstart.yaml")  # an existing path wins
    assert inl_sim.load_scenario("quickstart.yaml").name == "mine"
    assert dict(describe_scenarios())["quickstart"].startswith("D-INL")
    assert (TOPOLOGY_DIR / "mesh9.yaml").is_file() and (TOPOLOGY_DIR / "README.md").is_file()


def test_pyproject_declares_the_package_data_and_version() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["version"] == inl_sim.__version__
    data = meta["tool"]["setuptools"]["package-data"]["inl_sim"]
    assert "py.typed" in data and any("scenarios" in d for d in data) and any("topologies" in d for d in data)
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert "the inl-sim developers" in (ROOT / "LICENSE").read_text()
