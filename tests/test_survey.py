"""Tests of inl_sim.study.survey and ``run.py topologies``.

Structural oracles are computed here with networkx and yaml straight from the files
(not through inl_sim.network / routing); trained surveys use 1 epoch of tiny data, and
their byte totals are checked against the closed form of METHOD.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest
import yaml

from inl_sim.study import survey
from inl_sim.cli import main
from inl_sim.errors import ScenarioError, TopologyError
from inl_sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "inl_sim" / "assets" / "scenarios" / "quickstart.yaml"
PAYLOAD_BITS = 8 * 32  # quickstart: latent_dim 8, float32
TINY = {"data.n_train": 64, "data.n_test": 32, "training.batch_size": 32, "training.epochs": 1}


def oracle(graph: nx.Graph, fusion: object) -> dict:
    """Structure of dense INL / D-INL when every other node senses: dense uses every link
    (``dense_ties: keep``, the default), the tree has n - 1 links."""
    dense = graph.number_of_edges()
    n = graph.number_of_nodes()
    return {"n_nodes": n, "n_links": graph.number_of_edges(), "n_sensors": n - 1, "fusion": fusion,
            "dense_edges": dense, "tree_edges": n - 1, "n_live": n,
            "structural_ratio": (n - 1) / dense, "structural_reduction": 1 - (n - 1) / dense}


def read_mesh9() -> tuple[nx.Graph, object]:
    raw = yaml.safe_load((ROOT / "inl_sim" / "assets" / "topologies" / "mesh9.yaml").read_text())
    graph = nx.Graph()
    graph.add_edges_from((u, v, {"capacity_bps": float(d["capacity_bps"])}) for u, v, d in raw["edges"])
    return graph, raw["fusion"]


def read_abilene() -> tuple[nx.Graph, object]:
    graph = nx.read_graphml(ROOT / "inl_sim" / "assets" / "topologies" / "abilene.graphml")
    return nx.Graph(graph), graph.graph["fusion"]


# --------------------------------------------------------------------------- structure

def test_structure_only_on_shipped_files_equals_networkx() -> None:
    result = survey.compare_topologies(QUICKSTART, ["mesh9.yaml", "abilene.graphml"], structure_only=True)
    assert result.runs == {}
    for label, (graph, fusion) in (("mesh9.yaml", read_mesh9()), ("abilene.graphml", read_abilene())):
        row = result.row(label)
        assert {k: row[k] for k in oracle(graph, fusion)} == oracle(graph, fusion)
    mesh9 = result.row("mesh9.yaml")
    assert (mesh9["dense_edges"], mesh9["tree_edges"]) == (27, 8)
    assert round(mesh9["structural_reduction"], 3) == 0.704


def test_structure_of_generated_grid_and_star_equals_networkx() -> None:
    result = survey.compare_topologies(QUICKSTART, ["grid:9", "star:6"], structure_only=True)
    grid = nx.convert_node_labels_to_integers(nx.grid_2d_graph(3, 3), ordering="sorted")
    nx.set_edge_attributes(grid, 1.0e6, "capacity_bps")  # quickstart leaves capacities at 1e6
    star = nx.star_graph(5)
    nx.set_edge_attributes(star, 1.0e6, "capacity_bps")
    assert {k: result.row("grid:9")[k] for k in oracle(grid, 4)} == oracle(grid, 4)  # centre is most central
    assert {k: result.row("star:6")[k] for k in oracle(star, 0)} == oracle(star, 0)
    assert result.row("grid:9")["structural_reduction"] == 1 - 8 / 12


def test_default_set_is_shipped_files_then_random_geometric() -> None:
    labels = [c.label for c in survey.default_choices()]
    assert labels == [*sorted(p.name for p in (ROOT / "inl_sim" / "assets" / "topologies").iterdir()
                              if p.suffix in (".yaml", ".graphml")), "random_geometric:20", "random_geometric:50"]


def test_sensors_rule_applies_to_every_topology() -> None:
    result = survey.compare_topologies(QUICKSTART, ["mesh9.yaml", "knn:12:k=3"], sensors="k_random:4",
                                       structure_only=True)
    for row in result.rows:
        assert row["n_sensors"] == 4
        assert row["tree_edges"] == row["n_live"] - 1
        assert row["structural_ratio"] == row["tree_edges"] / row["dense_edges"]


def test_file_roles_replace_the_scenarios_roles() -> None:
    sc = load_scenario(QUICKSTART, {"topology.fusion": 3, "topology.sensors": [1, 2]})
    row = survey.compare_topologies(sc, ["abilene.graphml", "mesh9.yaml"], structure_only=True).rows
    assert [(r["fusion"], r["n_sensors"]) for r in row] == [("KansasCity", 10), (0, 8)]


# --------------------------------------------------------------------------- training

def test_trained_survey_measures_exactly_the_structural_reduction(tmp_path: Path) -> None:
    sc = load_scenario(QUICKSTART, TINY)
    result = survey.compare_topologies(sc, ["mesh9.yaml", "grid:9"], seeds=2, out_dir=tmp_path / "s")
    for row in result.rows:
        assert row["exchange_reduction"] == row["structural_reduction"]
        assert row["exchange_matches_structure"] is True
        assert row["n_seeds"] == 2 and row["epochs"] == 1
        # closed form: 2 directions * 2 steps * 32 samples * 8 values * 4 bytes per active edge
        assert row["exchange_bytes_dense_mean"] == 2 * 2 * 32 * 8 * 4 * row["dense_edges"]
        assert row["exchange_bytes_spt_mean"] == 2 * 2 * 32 * 8 * 4 * row["tree_edges"]
        assert 0.0 <= row["accuracy_dense_mean"] <= 1.0 and row["sim_time_per_epoch_s_spt_mean"] > 0
    assert [r.seed for r in result.runs["grid:9"]["spt"]] == [0, 1]
    saved = json.loads((tmp_path / "s" / "survey.json").read_text())
    assert [r["topology"] for r in saved["rows"]] == ["mesh9.yaml", "grid:9"] and saved["epochs"] == 1
    assert (tmp_path / "s" / "survey.md").read_text() == result.to_markdown()
    assert (tmp_path / "s" / "survey.csv").read_text().startswith("topology,name,n_nodes,n_links")
    assert (tmp_path / "s" / "runs" / "grid_9.dense" / "seed1" / "summary.json").is_file()


def test_table_flags_mismatch_and_not_applicable() -> None:
    base = {"topology": "t", "n_nodes": 3, "n_links": 3, "n_sensors": 2, "dense_edges": 3, "tree_edges": 2,
            "structural_ratio": 2 / 3, "structural_reduction": 1 / 3, "exchange_reduction": 0.3}
    rows = [{**base, "exchange_matches_structure": flag} for flag in (True, False, None)]
    lines = survey.format_survey_markdown(rows).splitlines()
    assert [line.split(" | ")[9] for line in lines[2:]] == ["ok", "MISMATCH", "n/a"]
    assert lines[2].endswith("| n/a | n/a | n/a | n/a |")


# --------------------------------------------------------------------------- parsing

def test_generator_choice_and_sensor_shorthand() -> None:
    choice = survey.generator_choice("knn:50:k=4")
    assert (choice.label, choice.overrides["topology.generator"], choice.overrides["topology.n_nodes"],
            choice.overrides["topology.params"], choice.overrides["topology.file"]) == ("knn:50:k=4", "knn", 50,
                                                                                      {"k": "4"}, None)
    assert survey.parse_sensors("k_random:8") == {"rule": "k_random", "k": 8}
    assert survey.parse_sensors("all") == "all" and survey.parse_sensors([1, 2]) == [1, 2]


@pytest.mark.parametrize("call, error", [
    (lambda: survey.generator_choice("foo:10"), TopologyError),
    (lambda: survey.generator_choice("random_geometric:x"), TopologyError),
    (lambda: survey.generator_choice("random_geometric"), TopologyError),
    (lambda: survey.generator_choice("knn:10:k"), TopologyError),
    (lambda: survey.parse_sensors("k_random:0"), ScenarioError),
    (lambda: survey.parse_choices("", ""), TopologyError),
    (lambda: survey.compare_topologies(QUICKSTART, ["mesh9.yaml", "mesh9.yaml"], structure_only=True), TopologyError),
    (lambda: survey.compare_topologies(QUICKSTART, ["grid:10"], structure_only=True), TopologyError),
])
def test_bad_inputs_raise_named_errors(call, error) -> None:
    with pytest.raises(error):
        call()


# --------------------------------------------------------------------------- CLI

@pytest.mark.parametrize("spec", ["foo:10", "random_geometric:x"])
def test_cli_bad_generator_exits_2_with_one_line(spec: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["topologies", "compare", str(QUICKSTART), "--generators", spec, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: --generators:") and err.count("\n") == 1 and spec in err
    assert not (tmp_path / "o").exists()


def test_cli_structure_only_and_list(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["topologies", "compare", str(QUICKSTART), "--structure-only", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "| mesh9.yaml | 9 | 27 | 8 | 27 | 8 | 0.2963 | 70.4% |" in out
    assert out.count("\n| random_geometric:") == 2
    assert main(["topologies", "list"]) == 0
    out = capsys.readouterr().out
    assert "| mesh9.yaml | 9 | 27 | 0 | 8 |" in out and "| abilene.graphml | 11 | 14 | KansasCity | 10 |" in out


def test_cli_end_to_end_writes_files_and_prints_table(tmp_path: Path) -> None:
    out = tmp_path / "survey"
    sets = [arg for k, v in TINY.items() if k != "training.epochs" for arg in ("--set", f"{k}={v}")]
    cmd = [sys.executable, "run.py", "topologies", "compare", "scenarios/quickstart.yaml", "--files", "mesh9.yaml",
           "--generators", "star:4", "--seeds", "1", "--epochs", "1", "--out", str(out), "--no-progress", *sets]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    table = (out / "survey.md").read_text()
    assert table in proc.stdout and "| measured reduction | check |" in table
    assert "| mesh9.yaml | 9 | 27 | 8 | 27 | 8 | 0.2963 | 70.4% | 70.4% | ok |" in table
    assert "| star:4 | 4 | 3 | 3 | 3 | 3 | 1.0000 | 0.0% | 0.0% | ok |" in table
    assert {p.name for p in out.iterdir()} == {"survey.md", "survey.csv", "survey.json", "runs", ".inl-sim",
                                              ".inl-sim.lock"}
