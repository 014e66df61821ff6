"""Output safety: results stay inside the output folder, foreign folders are never
emptied or replaced, one study per folder at a time, the umask decides permissions.

The oracle for "nothing else changed" is a digest of every file (path, bytes, mode)
under a parent folder, taken before and after; the oracle for permissions is
``0o777 & ~umask`` / ``0o666 & ~umask``, what ``mkdir``/``open`` give by POSIX.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from inl_sim import cli
from inl_sim.errors import ResultsError, ScenarioError
from inl_sim.study import executors
from inl_sim.study.comparison import compare, sweep
from inl_sim.study.experiment import run
from inl_sim.study.folders import (MARKER, check_name, clean_stale, folder_names, is_ours, slug, stamp,
                                   study_folder)
from inl_sim.study.results import read_json, write_json

from conftest import PYTHON, ROOT, cli_env, tiny_scenario


def digest(folder: Path) -> dict[str, tuple[str, int]]:
    """Every entry under ``folder``: relative path -> (content hash or 'dir', mode)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        content = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
        out[str(p.relative_to(folder))] = (content, stat.S_IMODE(p.stat().st_mode))
    return out


def _never_train(*args: object, **kwargs: object) -> None:
    raise AssertionError("training started although the input must be refused first")


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executors, "run_task", _never_train)


# --------------------------------------------------------------------------- names

BAD_NAMES = ["..", ".", "../x", "../../x", "a/b", "a\\b", "a\x00b", "tab\there", "/abs", "/tmp/x", "", "   ",
             "x" * 101, "CON", "nul.txt", "lpt1", "comparison.json", "runs", ".hidden", "\x7f"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=[repr(n)[:20] for n in BAD_NAMES])
def test_unsafe_names_are_refused_naming_the_field(name: str) -> None:
    with pytest.raises(ScenarioError, match=r"^compare\.methods\.name: "):
        check_name(name, "compare.methods.name")


@pytest.mark.parametrize("name", ["dense", "spt", "D-INL + finite-rate", "x y", "gate.beta=0.01", "é" * 100])
def test_ordinary_names_pass_unchanged(name: str) -> None:
    assert check_name(name, "name") == name


def test_slug_never_climbs_and_long_names_stay_distinct() -> None:
    assert slug("..") == "_." and slug(".") == "_" and slug("a/../b") == "a_.._b"
    assert all("/" not in slug(n) and not slug(n).startswith(".") for n in BAD_NAMES if n)
    a, b = slug("k=" + "1" * 300), slug("k=" + "1" * 299 + "2")
    assert a != b and len(a) <= 100 and len(b) <= 100


def test_names_sharing_a_folder_are_refused() -> None:
    with pytest.raises(ScenarioError, match="'x y' and 'x_y' would share the results folder 'x_y'"):
        folder_names(["x y", "x_y"], "compare.methods.name")


@pytest.mark.parametrize("methods", [
    [{"name": "..", "set": {"routing.mode": "spt"}}],
    [{"name": "../escape", "set": {"routing.mode": "spt"}}],
    [{"name": "/tmp/abs", "set": {"routing.mode": "spt"}}],
    [{"name": "x y", "set": {"routing.mode": "spt"}}, {"name": "x_y", "set": {"routing.mode": "dense"}}],
])
def test_compare_refuses_bad_method_names_before_anything(tmp_path: Path, no_training: None, methods: list) -> None:
    (tmp_path / "sibling").mkdir()
    (tmp_path / "sibling" / "file.txt").write_text("keep me")
    before = digest(tmp_path)
    with pytest.raises(ScenarioError, match="compare.methods.name"):
        compare(tiny_scenario(), methods=methods, seeds=1, out_dir=tmp_path / "study")
    assert digest(tmp_path) == before


def test_sweep_points_sharing_a_folder_are_refused(tmp_path: Path, no_training: None) -> None:
    with pytest.raises(ScenarioError, match="would share the results folder"):
        sweep(tiny_scenario(), {"description": ["a/b", "a_b"]}, seeds=1, out_dir=tmp_path / "s")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/inl-sim-absolute-name", "a/b"])
def test_cli_refuses_a_scenario_name_that_leaves_output_dir(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                            name: str) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(json.dumps(tiny_scenario(name=name, output_dir=str(tmp_path / "results"))))
    before = digest(tmp_path)
    for command in (["run"], ["compare", "--seeds", "1"]):
        assert cli.main([*command, str(scenario), "--no-progress"]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("error: name: ") and repr(name) in line
    assert digest(tmp_path) == before
    assert not Path("/tmp/inl-sim-absolute-name").exists()


def test_cli_refuses_a_bad_method_name_before_importing_torch(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    methods = [{"name": "x y", "set": {"routing.mode": "spt"}}, {"name": "x_y", "set": {"routing.mode": "dense"}}]
    scenario.write_text(json.dumps(tiny_scenario(compare={"methods": methods})))
    code = ("import sys; from inl_sim import cli; rc = cli.main(sys.argv[1:]); "
            "print('torch' in sys.modules); sys.exit(rc)")
    proc = subprocess.run([PYTHON, "-c", code, "compare", str(scenario), "--out", str(tmp_path / "o")], cwd=ROOT,
                          env=cli_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout.strip() == "False", proc
    assert "'x y' and 'x_y' would share the results folder 'x_y'" in proc.stderr
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- foreign folders

def test_out_at_a_foreign_folder_is_refused_and_left_untouched(tmp_path: Path, no_training: None,
                                                               capsys: pytest.CaptureFixture) -> None:
    mine = tmp_path / "my-thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("years of work")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(json.dumps(tiny_scenario()))
    before = digest(tmp_path)
    for argv in (["compare", str(scenario), "--out", str(mine), "--seeds", "1", "--no-report"],
                 ["sweep", str(scenario), "--out", str(mine), "--grid", "gate.beta=0,1", "--seeds", "1"],
                 ["run", str(scenario), "--out", str(mine)], ["run", str(scenario), "--out", str(mine), "--overwrite"],
                 ["topologies", "compare", str(scenario), "--out", str(mine), "--files", "mesh9.yaml"]):
        assert cli.main([*argv, "--no-progress"]) == 2, argv
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert str(mine) in line and "not made by inl-sim" in line and "--out" in line, line
    assert digest(tmp_path) == before


def test_a_file_where_a_folder_goes_is_refused(tmp_path: Path, no_training: None) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(ResultsError, match="is a file"):
        compare(tiny_scenario(), seeds=1, out_dir=tmp_path / "f")
    assert (tmp_path / "f").read_text() == "x"


def test_run_never_overwrites_without_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(json.dumps(tiny_scenario()))
    out = tmp_path / "run"
    assert cli.main(["run", str(scenario), "--out", str(out), "--no-progress"]) == 0
    first = digest(out)
    assert cli.main(["run", str(scenario), "--out", str(out), "--no-progress", "--seed", "1"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert digest(out) == first
    assert cli.main(["run", str(scenario), "--out", str(out), "--no-progress", "--seed", "1", "--overwrite"]) == 0
    assert read_json(out / "summary.json")["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "s.yaml"], "no temporary left beside it"


def test_run_overwrite_never_replaces_a_study_folder(tmp_path: Path, no_training: None) -> None:
    compare_dir = tmp_path / "study"
    with study_folder(compare_dir, "compare"):
        pass
    (compare_dir / "dense").mkdir()
    before = digest(tmp_path)
    with pytest.raises(ResultsError, match="holds an inl-sim compare folder, not a run folder"):
        run(tiny_scenario(), 0, out_dir=compare_dir, overwrite=True)
    assert digest(tmp_path) == before


def test_a_study_never_writes_into_a_run_folder(tmp_path: Path, no_training: None) -> None:
    out = tmp_path / "run"
    out.mkdir()
    stamp(out, "run")
    (out / "summary.json").write_text("{}")
    before = digest(tmp_path)
    with pytest.raises(ResultsError, match="holds an inl-sim run folder, not a study"):
        compare(tiny_scenario(), seeds=1, out_dir=out)
    assert digest(tmp_path) == before


def test_an_empty_folder_of_the_user_is_filled_not_replaced(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    inode = out.stat().st_ino
    compare(tiny_scenario(), modes=["spt"], seeds=1, out_dir=out)
    assert out.stat().st_ino == inode and is_ours(out) and (out / "spt" / "seed0" / "summary.json").is_file()


# --------------------------------------------------------------------------- lock

_HOLDER = """
import sys, time
from inl_sim.study.folders import study_folder
with study_folder(sys.argv[1], "compare"):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_two_studies_on_one_folder_one_refuses_at_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "study"
    (tmp_path / "sentinel.txt").write_text("beside the study folder")
    holder = subprocess.Popen([PYTHON, "-c", _HOLDER, str(out)], env=cli_env(), cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        before = digest(tmp_path)
        scenario = tmp_path / "s.yaml"
        scenario.write_text(json.dumps(tiny_scenario()))
        argv = ["compare", str(scenario), "--out", str(out), "--seeds", "1", "--no-progress", "--no-report"]
        assert cli.main(argv) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert f"another inl-sim study (pid {holder.pid})" in line and str(out) in line and "--out" in line
        scenario.unlink()
        assert digest(tmp_path) == before
    finally:
        holder.kill()
        holder.wait()
    # the kernel released the lock of the killed holder: the folder is usable at once
    cmp = compare(tiny_scenario(), modes=["spt"], seeds=1, out_dir=out)
    assert cmp.rows[0]["n_seeds"] == 1
    assert (tmp_path / "sentinel.txt").read_text() == "beside the study folder"


def test_the_lock_also_holds_within_one_process(tmp_path: Path) -> None:
    with study_folder(tmp_path / "s", "compare"):
        with pytest.raises(ResultsError, match=f"pid {os.getpid()}"):
            with study_folder(tmp_path / "s", "compare"):
                pass


# --------------------------------------------------------------------------- temporaries and umask

def test_stale_temporaries_of_inl_sim_are_removed_and_nothing_else(tmp_path: Path) -> None:
    study = tmp_path / "s"
    with study_folder(study, "compare"):
        pass
    ours, theirs, file_tmp = study / "spt" / ".seed0.tmp-123-abcd", study / ".seed0.tmp-7-beef", study / ".x.tmp-9-ab"
    ours.mkdir(parents=True)
    stamp(study / "spt", "method")
    stamp(ours, "run")
    theirs.mkdir()  # no marker: not provably ours
    file_tmp.write_text("half")
    (study / "spt" / "notes.tmp").write_text("a user's")
    assert clean_stale(study) == 2
    assert not ours.exists() and not file_tmp.exists() and theirs.exists() and (study / "spt" / "notes.tmp").exists()


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_folders_and_files_follow_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        compare(tiny_scenario(), modes=["spt"], seeds=1, out_dir=tmp_path / "a" / "study")
    finally:
        os.umask(old)
    entries = list((tmp_path / "a").rglob("*")) + [tmp_path / "a"]
    assert len(entries) > 10
    for p in entries:
        expected = (0o777 if p.is_dir() else 0o666) & ~umask
        assert stat.S_IMODE(p.stat().st_mode) == expected, p


# --------------------------------------------------------------------------- JSON

def test_non_finite_numbers_are_strict_json_strings_and_read_back(tmp_path: Path) -> None:
    data = {"a": math.nan, "b": [math.inf, -math.inf, 1.5, None], "c": {"d": math.nan}}
    write_json(tmp_path / "x.json", data)
    text = (tmp_path / "x.json").read_text()

    def refuse(token: str) -> None:
        raise AssertionError(f"non-standard JSON token {token}")

    raw = json.loads(text, parse_constant=refuse)
    assert raw == {"a": "NaN", "b": ["Infinity", "-Infinity", 1.5, None], "c": {"d": "NaN"}}
    back = read_json(tmp_path / "x.json")
    assert math.isnan(back["a"]) and back["b"][:3] == [math.inf, -math.inf, 1.5] and back["b"][3] is None
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_marker_says_which_folders_inl_sim_made(tmp_path: Path) -> None:
    compare(tiny_scenario(), modes=["spt"], seeds=1, out_dir=tmp_path / "s")
    stamp_ = json.loads((tmp_path / "s" / "spt" / "seed0" / MARKER).read_text())
    assert stamp_["kind"] == "run" and stamp_["method"] == "spt" and stamp_["seed"] == 0
    assert len(stamp_["run_key"]) == 64 and stamp_["status"] == "ok"
    assert json.loads((tmp_path / "s" / MARKER).read_text())["kind"] == "compare"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
