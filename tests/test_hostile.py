"""The hostile-input findings of issue #9, one test each, against independent oracles.

Alias bombs, deep nesting, self-referencing aliases and huge integers are refused by the
YAML reader with the limit named; the resource estimate refuses what cannot run and
accepts what can (10,000 nodes) and ``force`` overrides it; ids that read alike are not
merged; a relative ``topology.file`` resolves next to the scenario; every check runs
before torch is imported; the registries' names in ``scenario.spec`` equal the registries.
"""

from __future__ import annotations

import json
import math
import subprocess
import textwrap
from pathlib import Path
from typing import Iterator

import networkx as nx
import pytest
import yaml

from inl_sim.errors import ScenarioError, TopologyError
from inl_sim.network import build_network, read_topology_file
from inl_sim.scenario import load_scenario, parse_override, spec
from inl_sim.scenario.budget import check_budget, estimate, physical_memory_bytes
from inl_sim.scenario.yamlsafe import LIMITS, load_yaml

from conftest import MESH9, PYTHON, ROOT, cli_env, fail_after, tiny_scenario


@pytest.fixture(autouse=True)
def _no_hang() -> Iterator[None]:
    with fail_after(30, "the case"):
        yield



def bomb(levels: int = 9, width: int = 10) -> str:
    """A 'billion laughs' document: ``width ** levels`` values once expanded."""
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- YAML limits

def test_billion_laughs_is_refused_by_expanded_size() -> None:
    text = bomb()
    assert len(text) < 1100  # the 1 KB bomb of the issue
    with pytest.raises(ScenarioError, match=r"f\.yaml: refused: aliases expand to more than 2,000,000"):
        load_yaml(text, "f.yaml")


def test_expanded_size_is_exact_below_the_limit() -> None:
    # width ** levels leaves + the inner lists: 10 + 10*(1 + 10) ... computed independently
    levels, width = 3, 10
    data = load_yaml(bomb(levels, width), "ok.yaml")
    flat = data[f"a{levels - 1}"]
    count = 0
    stack = [flat]
    while stack:
        item = stack.pop()
        count += 1
        if isinstance(item, list):
            stack.extend(item)
    assert count == sum(width ** k for k in range(levels + 1))  # 1 + 10 + 100 + 1000


def test_deep_nesting_and_self_reference_are_errors_not_recursion() -> None:
    with pytest.raises(ScenarioError, match="nesting deeper than 64"):
        load_yaml("x: " + "[" * 5000 + "]" * 5000, "deep.yaml")
    with pytest.raises(ScenarioError, match="self-referencing alias"):
        load_yaml("name: &a [*a]\n", "self.yaml")
    with pytest.raises(ScenarioError, match="self-referencing alias"):
        load_yaml("a: &m {b: *m}\n", "self.yaml")
    load_yaml("x: " + "[" * 63 + "]" * 63, "ok.yaml")  # the mapping + 63 lists: 64 levels, accepted


def test_aliases_that_expand_too_deep_are_refused() -> None:
    text = "a0: &a0 " + "[" * 40 + "]" * 40 + "\n" + "a1: &a1 " + "[" * 30 + "*a0" + "]" * 30 + "\n"
    with pytest.raises(ScenarioError, match="aliases expand to nesting deeper"):
        load_yaml(text, "d.yaml")


def test_integer_digits_are_limited() -> None:
    with pytest.raises(ScenarioError, match="an integer with 5000 digits"):
        load_yaml("seed: " + "9" * 5000, "big.yaml")
    assert load_yaml("seed: " + "9" * 40, "ok.yaml") == {"seed": int("9" * 40)}
    assert load_yaml("a: 0x1F\nb: 1_000\nc: 1.0e+6", "ok.yaml") == {"a": 31, "b": 1000, "c": 1.0e6}


def test_scenario_file_bomb_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb() + "name: x\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(path) in str(info.value) and "alias" in str(info.value)


def test_override_values_go_through_the_same_limits() -> None:
    with pytest.raises(ScenarioError, match=r"--set description: refused: a self-referencing"):
        parse_override("description=&a [*a]")
    with pytest.raises(ScenarioError, match="digits"):
        parse_override("seed=" + "1" * 100)


def test_self_referencing_dict_from_the_api_is_an_error() -> None:
    raw = tiny_scenario()
    raw["topology"]["params"] = loop = {}
    loop["again"] = loop
    with pytest.raises(ScenarioError, match="nested deeper"):
        load_scenario(raw)


# --------------------------------------------------------------------------- values

def test_error_line_of_a_20000_item_description_is_short() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(tiny_scenario(description=list(range(20000))))
    message = str(info.value)
    assert message.startswith("description: [0, 1, 2, 3, 4, 5, ...] must be a string")
    assert len(message) < 200


def test_floats_are_not_cut_to_integers() -> None:
    with pytest.raises(TopologyError, match=r"topology.params.height: 1.5 must be an integer"):
        load_scenario({"topology": {"generator": "balanced_tree", "n_nodes": 7, "params": {"height": 1.5}}})
    with pytest.raises(ScenarioError, match=r"training.epochs: 2.0 must be an integer"):
        load_scenario(tiny_scenario(training__epochs=2.0))


def test_latency_is_bounded_so_times_stay_finite() -> None:
    with pytest.raises(ScenarioError, match=r"topology.latency_s: 1e\+308 must be in \[0, 1e\+06\]"):
        load_scenario(tiny_scenario(topology__latency_s=1.0e308))
    sc = load_scenario(tiny_scenario(topology__latency_s=1.0e6))
    assert sc.topology.latency_s.params == (1.0e6,)


def test_grid_and_tree_sizes_are_capped_before_drawing() -> None:
    with pytest.raises(TopologyError, match="gives 1e\\+12 nodes"):
        load_scenario({"topology": {"generator": "grid", "params": {"rows": 10 ** 6, "cols": 10 ** 6}}})
    with pytest.raises(TopologyError, match="nodes, over"):
        load_scenario({"topology": {"generator": "balanced_tree", "params": {"branching": 10, "height": 500}}})


# --------------------------------------------------------------------------- resource estimate

def test_estimate_terms_follow_the_documented_formula() -> None:
    sc = load_scenario({"topology": {"generator": "star", "n_nodes": 5}, "routing": {"mode": "dense"},
                        "simulation": {"engine": "reference"},
                        "data": {"n_train": 100, "n_test": 50, "view_dim": 3, "n_classes": 4, "groups_per_view": 2},
                        "model": {"latent_dim": 2, "hidden_dim": 4}, "training": {"epochs": 3, "batch_size": 10}})
    est = estimate(sc)
    terms = dict(zip(("data", "parameters", "activations", "ledger", "graph"), est.memory_terms.values()))
    params = (3 + 2 * 2) * 4 + 4 * 2 + 2 * 4          # (view + 2 latent) * hidden + hidden * latent + latent * classes
    assert terms["data"] == (100 + 50) * 4 * 3 * 8     # 4 sensors (all but the fusion node)
    assert terms["parameters"] == 5 * params * 16
    assert terms["activations"] == 10 * 5 * (4 + 2 * 2) * 12
    assert terms["ledger"] == 3 * 10 * 2 * (5 * 4) * 64
    steps_time = 3 * 10 * (5 * 626e-6 + 2 * 20 * 40e-6)
    assert math.isclose(list(est.time_terms.values())[0], steps_time)
    assert math.isclose(list(est.time_terms.values())[1], 6 * 5 * params * 100 * 3 / 5e9)


@pytest.mark.parametrize("overrides,field", [
    ({"topology.n_nodes": 1_000_000}, "topology.n_nodes"),
    ({"topology.n_nodes": 100_000, "simulation.engine": "reference"}, "topology.n_nodes"),
    ({"training.epochs": 10 ** 9}, "training.epochs"),
    ({"data.n_train": 10 ** 9}, "data.n_train"),
    ({"data.view_dim": 10 ** 7}, "data.view_dim"),
    ({"model.latent_dim": 10 ** 6}, "model.latent_dim"),
    ({"model.hidden_dim": 10 ** 6}, "model.hidden_dim"),
])
def test_over_budget_is_refused_naming_the_field(overrides: dict, field: str) -> None:
    raw = {"topology": {"generator": "random_geometric", "n_nodes": 1000}}
    with pytest.raises(ScenarioError) as info:
        load_scenario(raw, overrides)
    message = str(info.value)
    assert field in message and "exceeds the budget" in message and "--force" in message


def test_the_estimate_follows_the_engine_and_the_training_graph() -> None:
    raw = {"topology": {"generator": "random_geometric", "n_nodes": 1000}, "data": {"n_train": 640}}
    fast, ref = (estimate(load_scenario(raw, {"simulation.engine": e, "routing.mode": "spt"})) for e in ("fast", "reference"))
    steps = 10 * 10   # default 10 epochs x 640 / 64
    assert math.isclose(list(fast.time_terms.values())[0], steps * (1000 * 100e-6 + 2 * 999 * 2e-6))
    assert math.isclose(list(ref.time_terms.values())[0], steps * (1000 * 626e-6 + 2 * 999 * 40e-6))
    dense = estimate(load_scenario(raw, {"routing.mode": "dense"}))
    assert list(dense.memory_terms.values())[3] > list(fast.memory_terms.values())[3]   # every link's records
    assert list(fast.memory_terms.values())[3] == steps * 2 * 999 * 64


def test_ten_thousand_nodes_are_accepted_by_default() -> None:
    sc = load_scenario({"topology": {"generator": "random_geometric", "n_nodes": 10_000}})
    est = check_budget(sc)
    assert est.memory_bytes < 0.75 * physical_memory_bytes() and est.time_s < 24 * 3600


def test_force_accepts_and_is_kept_through_overrides() -> None:
    raw = {"topology": {"generator": "random_geometric", "n_nodes": 1000}}
    sc = load_scenario(raw, {"training.epochs": 10 ** 9}, force=True)
    assert sc.limits.force and sc.training.epochs == 10 ** 9
    assert load_scenario(sc, {"gate.beta": 1e-3}).training.epochs == 10 ** 9
    assert load_scenario(raw, {"training.epochs": 10 ** 9, "limits.force": True}).limits.force


def test_cli_force_passes_the_budget(capsys: pytest.CaptureFixture) -> None:
    from inl_sim import cli
    over = ["show", "quickstart", "--set", "training.epochs=1000000000"]
    assert cli.main(over) == 2 and "--force" in capsys.readouterr().err
    assert cli.main([*over, "--force"]) == 0  # show trains nothing, so the forced scenario is cheap here
    assert "spt/dense links: 8/27" in capsys.readouterr().out


@pytest.mark.parametrize("suffix", [".yaml", ".graphml"])
def test_a_topology_file_is_estimated_like_the_same_explicit_graph(tmp_path: Path, suffix: str) -> None:
    graph = nx.gnm_random_graph(300, 900, seed=1)
    graph.add_edges_from((i, i + 1) for i in range(299))  # connected
    path = tmp_path / f"g{suffix}"
    edges = [[u, v] for u, v in graph.edges]
    if suffix == ".yaml":
        path.write_text(yaml.safe_dump({"edges": edges}), encoding="utf-8")
    else:
        nx.write_graphml(graph, path)
    from_file = estimate(load_scenario(tiny_scenario(topology={"file": str(path)})))
    explicit = estimate(load_scenario(tiny_scenario(topology={"edges": edges, "fusion": 0})))
    assert from_file.memory_terms == explicit.memory_terms and from_file.time_terms == explicit.time_terms


def test_a_tighter_budget_refuses_the_quickstart() -> None:
    with pytest.raises(ScenarioError, match="limits.max_hours"):
        load_scenario("quickstart", {"limits.max_hours": 1e-9})


# --------------------------------------------------------------------------- topology files

def test_graphml_ids_that_read_alike_are_refused(tmp_path: Path) -> None:
    for a, b in (("1", "01"), ("0", "-0")):
        graph = nx.Graph([(a, b), (a, "7")])
        nx.write_graphml(graph, tmp_path / "ids.graphml")
        with pytest.raises(TopologyError, match="collide"):
            read_topology_file(tmp_path / "ids.graphml")
    nx.write_graphml(nx.Graph([("1", "2")]), tmp_path / "fine.graphml")
    graph, _ = read_topology_file(tmp_path / "fine.graphml")
    assert sorted(graph) == [1, 2]


def test_yaml_ids_int_and_string_zero_are_refused(tmp_path: Path) -> None:
    raw = tiny_scenario(topology={"edges": [[0, "0"], [0, 1]], "fusion": 0})
    sc = load_scenario(raw)
    with pytest.raises(TopologyError, match="collide"):
        build_network(sc.topology, seed=0)


def test_graphml_positions_must_be_finite(tmp_path: Path) -> None:
    graph = nx.Graph([("a", "b")])
    graph.nodes["a"].update(x="nan", y="1")
    nx.write_graphml(graph, tmp_path / "nan.graphml")
    with pytest.raises(TopologyError, match=r"node 'a': attribute x='nan'"):
        read_topology_file(tmp_path / "nan.graphml")
    graph.nodes["a"].update(x="0.5", y="2", Latitude="")
    nx.write_graphml(graph, tmp_path / "lat.graphml")
    with pytest.raises(TopologyError, match=r"attribute Latitude=''"):
        read_topology_file(tmp_path / "lat.graphml")


def test_relative_topology_file_resolves_next_to_the_scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "mesh9.yaml").write_text("edges: [[0, 1], [1, 2]]\nfusion: 0\n", encoding="utf-8")
    scenario = folder / "s.yaml"
    scenario.write_text(yaml.safe_dump(tiny_scenario(topology={"file": "mesh9.yaml"})), encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # not the scenario's folder
    sc = load_scenario(scenario)
    assert Path(sc.topology.file) == (folder / "mesh9.yaml").resolve()
    assert build_network(sc.topology, seed=0).graph.number_of_nodes() == 3  # not the shipped 9-node mesh
    (folder / "mesh9.yaml").unlink()
    sc = load_scenario(scenario)  # falls back to the shipped topology of that name
    assert build_network(sc.topology, seed=0).graph.number_of_nodes() == 9


# --------------------------------------------------------------------------- before torch

def test_registry_names_in_spec_equal_the_registries() -> None:
    from inl_sim.learning.coding import CODECS
    from inl_sim.learning.gating import GATES
    from inl_sim.network.generators import GENERATORS
    from inl_sim.network.routing import EDGE_COSTS
    from inl_sim.scenario.limits import GENERATOR_PARAMS
    assert set(spec.GATE_KINDS) == set(GATES)
    assert set(spec.ENCODINGS) == set(CODECS)
    assert set(spec.EDGE_COSTS) == set(EDGE_COSTS)
    assert set(spec.GENERATORS) == set(GENERATORS) == set(GENERATOR_PARAMS)


def test_every_aggregation_optimizer_mode_and_data_kind_builds() -> None:
    """The names in spec are accepted downstream: each one prepares a run."""
    from inl_sim.study.experiment import prepare
    for key, names in (("model.aggregation", spec.AGGREGATIONS), ("training.optimizer", spec.OPTIMIZERS),
                       ("routing.mode", spec.ROUTING_MODES), ("routing.dense_ties", spec.DENSE_TIES),
                       ("gate.kind", spec.GATE_KINDS), ("message.encoding", spec.ENCODINGS)):
        for name in names:
            prepare(load_scenario(tiny_scenario(), {key: name, "data.n_train": 64, "data.n_test": 32}), 0)


def test_cli_errors_come_before_torch_is_imported(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(bomb(), encoding="utf-8")
    cases = [["run", "quickstart", "--set", "gate.kind=magic"],
             ["show", "quickstart", "--set", "message.encoding=zip"],
             ["compare", "quickstart", "--set", "compare.methods=[{name: a, set: {model.aggregation: max}}]"],
             ["sweep", "quickstart", "--grid", "gate.kind=none,gaussian,magic"],
             ["rate-curve", "quickstart", "--set", "training.epochs=1000000000"],
             ["run", str(tmp_path / "bomb.yaml")], ["topologies", "compare", "quickstart", "--set", "seed=-1"]]
    code = textwrap.dedent(f"""
        import json, sys
        from inl_sim.cli import main
        codes = [main(argv) for argv in {json.dumps(cases)}]
        print(json.dumps({{"codes": codes, "torch": "torch" in sys.modules}}))
    """)
    proc = subprocess.run([PYTHON, "-c", code], cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                          timeout=120)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"codes": [2] * len(cases), "torch": False}, proc.stderr
    assert proc.stderr.count("error:") == len(cases) and "Traceback" not in proc.stderr


def test_limits_are_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Limits and packaging", 1)[1].split("\n## ", 1)[0]
    for number in (f"{LIMITS.max_depth}", f"{LIMITS.max_aliases:,}", f"{LIMITS.max_expanded:,}",
                   f"{LIMITS.max_int_digits} digits", "--force"):
        assert number in section, number
    assert MESH9.is_file()
