"""The README is executable documentation: its Python quickstart runs and its CLI lines parse."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from inl_sim.cli import build_parser
from inl_sim.scenario.library import resolve_scenario

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def _cli_lines() -> list[str]:
    lines = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("python run.py "):
                lines.append(line)
    return lines


def test_readme_has_the_two_commands_and_ci_runs_the_test_one() -> None:
    commands = [b.strip() for b in _blocks("bash") if "pip install" in b]
    assert len(commands) == 2, "README needs exactly two install commands: main job and tests"
    main_job, tests = commands
    assert "python run.py run quickstart" in main_job and "constraints.txt" in main_job
    assert "pytest" in tests and "constraints.txt" in tests
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert tests in ci.splitlines(), ".ci/run must call exactly the README's test command"


@pytest.mark.parametrize("line", _cli_lines())
def test_readme_cli_lines_parse(line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(shlex.split(line)[2:])
    assert callable(args.func)
    scenario = getattr(args, "scenario", None)
    if scenario:
        monkeypatch.chdir(ROOT)
        assert resolve_scenario(scenario).is_file(), f"README names a scenario that does not ship: {scenario}"


def test_readme_python_quickstart_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(ROOT)
    (code,) = _blocks("python")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - executing our own docs
    res, cmp = namespace["res"], namespace["cmp"]
    assert res.n_active_edges == 8
    assert abs(cmp.row("spt")["exchange_reduction"] - (1 - 8 / 27)) < 1e-12
    assert "± " in capsys.readouterr().out
