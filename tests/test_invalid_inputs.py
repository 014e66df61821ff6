"""The invalid-input table: hundreds of malformed or hostile inputs, generated per field.

Every scenario field gets the bad values its type admits (wrong type, negative, zero,
huge, NaN, inf, bool for int, float for int, string, list, nested mapping) and every
section an unknown key; the same through ``--set`` overrides; YAML and GraphML topology
files with bad attributes, colliding ids and hostile YAML; and CLI arguments.  Each case
must raise one of our exceptions (CLI: exit 2 and one ``error:`` line, no traceback),
whose one-line message names the field, and must not hang (an alarm fails it after 20 s).
The oracle of "bad" is the documented schema (README "Scenario reference"), written out
here, not the code under test.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from inl_sim import cli
from inl_sim.errors import InlSimError
from inl_sim.scenario.spec import Distribution
from inl_sim.network import read_topology_file
from inl_sim.scenario import Scenario, load_scenario, parse_override

from conftest import MESH9, fail_after, tiny_scenario

MAX_LINE = 400
BOMB = "\n".join(["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
                 + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)])


@pytest.fixture(autouse=True)
def _no_hang() -> Iterator[None]:
    with fail_after(20, "invalid input"):
        yield



def assert_clean(exc: BaseException, *names: str) -> None:
    message = str(exc)
    assert isinstance(exc, InlSimError), f"{type(exc).__name__}: {message[:300]}"
    assert "\n" not in message and len(message) <= MAX_LINE + 200, message[:300]
    for name in names:
        assert name in message, f"{name!r} not in {message[:300]!r}"


# --------------------------------------------------------------------------- the schema, as documented

# Lower bounds from the README's scenario reference: fields where 0 is invalid.
ZERO_INVALID = {"topology.n_nodes", "data.n_train", "data.n_test", "data.n_classes", "data.view_dim",
                "data.groups_per_view", "model.latent_dim", "model.hidden_dim", "gate.n_choices", "message.bits",
                "training.epochs", "training.batch_size", "compare.seeds", "data.separation", "gate.temperature",
                "message.step", "message.grad_step", "training.lr", "limits.memory_fraction", "limits.max_hours",
                "topology.capacity_bps", "topology.node_flops_per_s",
                "topology.capacity_rule.bps", "topology.capacity_rule.low_bps", "topology.capacity_rule.high_bps",
                "topology.capacity_rule.ref_km", "topology.capacity_rule.exponent", "topology.wireless.bandwidth_hz",
                "topology.wireless.area_m", "topology.wireless.path_loss.exponent",
                "topology.wireless.path_loss.ref_distance_m",
                "experts.n_experts", "experts.k", "experts.n_pretrain", "experts.expert_steps", "experts.hidden_dim",
                "experts.n_selection", "experts.n_resamples", "experts.batch_size", "experts.temperature", "experts.lr"}
# decibel quantities: a negative number is a valid level
NEGATIVE_VALID: set[str] = {"topology.wireless.tx_power_dbm", "topology.wireless.noise_dbm_per_hz",
                            "topology.wireless.min_snr_db", "topology.wireless.path_loss.ref_loss_db"}
HUGE_INVALID_FLOATS = {"limits.memory_fraction", "limits.max_hours"}
CHOICE_FIELDS = {"data.kind", "model.aggregation", "routing.mode", "routing.dense_ties", "gate.kind",
                 "message.encoding", "message.grad_encoding", "training.optimizer", "topology.generator",
                 "routing.cost", "simulation.engine", "simulation.device", "gate.rate",
                 "topology.capacity_rule.rule", "topology.wireless.path_loss.model",
                 "experts.placement", "experts.routing", "experts.choice_coding", "experts.bank", "faults.policy",
                 "faults.stragglers.kind", "faults.capacity.kind"}
SKIP = {"topology.params", "topology.nodes", "topology.edges", "topology.fusion", "topology.sensors",
        "topology.file", "gate.node_beta", "compare.methods", "compare.reference", "compare.rate_reference",
        "experts.nodes", "experts.router", "experts.alphas",  # node ids and the alpha list: tests/test_experts.py
        # lists and maps of the faults section: their own table in tests/test_faults.py
        "faults.link_loss", "faults.events", "faults.stragglers.factors", "faults.stragglers.nodes",
        "faults.stragglers.trace", "faults.capacity.schedule", "faults.capacity.links"}


def _section(tp: object) -> type | None:
    """The dataclass of a section typed ``Spec`` or ``Spec | None``, else None."""
    if dataclasses.is_dataclass(tp):
        return tp  # type: ignore[return-value]
    inner = [a for a in typing.get_args(tp) if a is not type(None)]
    return inner[0] if len(inner) == 1 and dataclasses.is_dataclass(inner[0]) else None


def leaf_fields(cls: type = Scenario, prefix: str = "") -> list[tuple[str, object]]:
    """Every leaf field of the schema, nested sections included (``topology.wireless.path_loss.exponent``)."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        if path in SKIP:
            continue
        section = _section(hints[f.name])
        if section is not None and section is not Distribution:
            out += leaf_fields(section, path + ".")
        else:
            out.append((path, hints[f.name]))
    return [(path, tp) for path, tp in out if path not in SKIP]


def bad_values(path: str, tp: object) -> list[tuple[str, object]]:
    args = set(typing.get_args(tp)) - {type(None)}
    base = next(iter(args)) if len(args) == 1 else tp
    common = [("list", [1]), ("mapping", {"a": 1})]
    if "capacity_bps" in path or "latency_s" in path or "flops_per_s" in path:  # Distribution
        vals = common[:1] + [("negative", -1.0), ("huge", 1.0e305), ("nan", "nan"), ("inf", float("inf")),
                             ("bool", True), ("reversed", {"uniform": [2.0, 1.0]}), ("unknown-dist", {"gauss": [1]}),
                             ("params-not-list", {"uniform": "x"}), ("empty-choice", {"choice": []}),
                             ("two-dists", {"uniform": [1, 2], "choice": [1]}), ("string", "fast")]
    elif path in CHOICE_FIELDS:
        vals = common + [("unknown", "bogus"), ("int", 3), ("bool", True)]
        if base is not type(None) and type(None) not in typing.get_args(tp):
            vals.append(("null", None))
    elif base is int:
        vals = common + [("string", "ten"), ("fraction", 2.5), ("float", 3.0), ("bool", True), ("negative", -1),
                         ("huge", 10 ** 30), ("5000-digits", 10 ** 5000), ("numeric-string", "1e3")]
        if type(None) not in typing.get_args(tp):
            vals.append(("null", None))
    elif base is float:
        vals = common + [("string", "abc"), ("nan", float("nan")), ("nan-string", "nan"), ("inf", float("inf")),
                         ("-inf-string", "-inf"), ("overflow-string", "1e400"), ("bool", True),
                         ("5000-digits", 10 ** 5000)]
        if type(None) not in typing.get_args(tp):   # an optional float (faults.deadline_s) may be null
            vals.append(("null", None))
        if path not in NEGATIVE_VALID:
            vals.append(("negative", -1.0))
        if path in HUGE_INVALID_FLOATS:
            vals.append(("huge", 1.0e300))
    elif base is bool:
        vals = common + [("string", "yes"), ("int", 1), ("float", 0.5), ("null", None)]
    elif base is str:
        vals = common + [("int", 3), ("bool", True), ("20000-items", list(range(20000)))]
        if type(None) not in typing.get_args(tp):
            vals.append(("null", None))
    else:
        raise AssertionError(f"no bad values for {path}: {tp}")
    if path in ZERO_INVALID:
        vals.append(("zero", 0))
    return vals


def set_dotted(raw: dict, dotted: str, value: object) -> dict:
    *parents, last = dotted.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return raw


FIELD_CASES = [(path, label, value) for path, tp in leaf_fields() for label, value in bad_values(path, tp)]
SECTIONS = [f.name for f in dataclasses.fields(Scenario) if dataclasses.is_dataclass(f.type) or f.name in (
    "topology", "data", "model", "routing", "gate", "message", "training", "compare", "limits")]
UNKNOWN_CASES = [f"{s}.bogus_key" for s in SECTIONS] + ["bogus_top_key"]


def test_the_table_is_large_enough() -> None:
    total = (len(FIELD_CASES) + len(UNKNOWN_CASES) + len(OVERRIDE_CASES) + len(YAML_FILE_CASES)
             + len(GRAPHML_CASES) + len(CLI_CASES))
    assert total >= 300, total


@pytest.mark.parametrize("path,label,value", FIELD_CASES, ids=[f"{p}-{lab}" for p, lab, _ in FIELD_CASES])
def test_bad_field_value_is_refused_naming_the_field(path: str, label: str, value: object) -> None:
    raw = set_dotted(tiny_scenario(), path, value)
    if path.startswith("topology.") and path.split(".")[1] in ("generator", "n_nodes"):
        raw["topology"].pop("file", None)
        raw["topology"].setdefault("generator", "star")
    with pytest.raises(InlSimError) as info:
        load_scenario(raw)
    assert_clean(info.value, path)


@pytest.mark.parametrize("dotted", UNKNOWN_CASES)
def test_unknown_key_is_refused_naming_it(dotted: str) -> None:
    with pytest.raises(InlSimError) as info:
        load_scenario(set_dotted(tiny_scenario(), dotted, 1))
    assert_clean(info.value, dotted.rsplit(".", 1)[-1], "unknown key")


# --------------------------------------------------------------------------- overrides (--set)

OVERRIDE_TEXTS = {
    "int": ["ten", "1.5", "2.0", "-1", "9" * 5000, "[1]", "{a: 1}", "&a [*a]", "[" * 100 + "]" * 100, "true",
            "1e3"],
    "float": ["abc", ".nan", ".inf", "-.inf", "[1.0]", "{a: 1}", "9" * 5000, "&a [*a]", "1e400", "null"],
    "choice": ["bogus", "3", "[dense]", "{a: 1}", "&a [*a]"],
}
OVERRIDE_FIELDS = {"training.epochs": "int", "data.n_train": "int", "model.latent_dim": "int",
                   "topology.seed": "int", "gate.beta": "float", "training.lr": "float", "message.step": "float",
                   "gate.kind": "choice", "message.encoding": "choice", "routing.mode": "choice"}
OVERRIDE_CASES = [f"{key}={text}" for key, kind in OVERRIDE_FIELDS.items() for text in OVERRIDE_TEXTS[kind]] + [
    "training.bogus=1", "bogus.epochs=1", "training.epochs.deeper=1", "gate.bta=1e-3", "=3", "no-equals-sign",
    "training.epochs=" + "{" + ", ".join(f"k{i}: &a{i} [1]" for i in range(3)) + "}",
    "description=" + "[" + ", ".join(["x"] * 20000) + "]", "name=" + "&a [*a, *a]",
    "topology.params.height=1.5", "topology.latency_s=1.0e+308", "topology.capacity_bps=1.0e-300",
]


def _override_key(text: str) -> str:
    key = text.partition("=")[0].strip()
    return key if key else "--set"


@pytest.mark.parametrize("text", OVERRIDE_CASES, ids=[t[:40] for t in OVERRIDE_CASES])
def test_bad_override_is_refused_naming_the_key(text: str) -> None:
    raw = tiny_scenario()
    if text.startswith("topology.params"):
        raw["topology"] = {"generator": "balanced_tree", "n_nodes": 7}
    with pytest.raises(InlSimError) as info:
        load_scenario(raw, dict([parse_override(text)]))
    key = _override_key(text)
    assert_clean(info.value, key if key != "no-equals-sign" else "--set")


# --------------------------------------------------------------------------- YAML topology files

LINK_BAD = [("negative", -1.0), ("nan", ".nan"), ("string", "fast"), ("huge", "1.0e+305"), ("bool", "true"),
            ("list", "[1]"), ("mapping", "{a: 1}"), ("inf", ".inf")]


def _yaml_cases() -> list[tuple[str, str, list[str]]]:
    cases = []
    for key in ("capacity_bps", "latency_s"):
        for label, text in LINK_BAD + ([("zero", "0")] if key == "capacity_bps" else []):
            cases.append((f"{key}-{label}", f"edges:\n  - [0, 1, {{{key}: {text}}}]\n", ["edges[0]", key]))
    for label, text in LINK_BAD + [("zero", "0")]:
        cases.append((f"flops-{label}", f"nodes: [0, {{id: 1, flops_per_s: {text}}}]\nedges: [[0, 1]]\n",
                      ["nodes[1]", "flops_per_s"]))
    for label, text in [("short", "[1]"), ("nan", "[1, .nan]"), ("string", "here"), ("three", "[1, 2, 3]"),
                        ("text-coords", "[a, 1]"), ("inf", "[.inf, 0]")]:
        cases.append((f"pos-{label}", f"nodes: [0, {{id: 1, pos: {text}}}]\nedges: [[0, 1]]\n", ["nodes[1]", "pos"]))
    for label, ids in [("int-vs-string", "[0, '0']"), ("1-vs-01", "[1, '01']"), ("0-vs-minus0", "[0, '-0']"),
                       ("twice", "[a, a]")]:
        cases.append((f"ids-{label}", f"nodes: {ids}\nedges: [[{yaml.safe_load(ids)[0]!r}, "
                      f"{yaml.safe_load(ids)[1]!r}]]\n", ["nodes"]))
    for label, text, names in [
        ("id-list", "edges: [[[0], 1]]\n", ["edges[0]"]), ("id-float", "edges: [[0.5, 1]]\n", ["edges[0]"]),
        ("id-bool", "edges: [[true, 1]]\n", ["edges[0]"]), ("id-null", "edges: [[null, 1]]\n", ["edges[0]"]),
        ("self-loop", "edges: [[0, 0]]\n", ["edges[0]", "self-loop"]),
        ("duplicate", "edges: [[0, 1], [1, 0]]\n", ["edges[1]", "twice"]),
        ("unknown-node", "nodes: [0, 1]\nedges: [[0, 2]]\n", ["edges[0]", "2"]),
        ("edge-short", "edges: [[0]]\n", ["edges[0]"]), ("edge-attr-unknown", "edges: [[0, 1, {speed: 1}]]\n",
                                                         ["edges[0]", "speed"]),
        ("no-edges", "nodes: [0, 1]\n", ["edges"]), ("edges-scalar", "edges: 3\n", ["edges"]),
        ("top-list", "- [0, 1]\n", ["top level"]), ("top-scalar", "hello\n", ["top level"]),
        ("unknown-key", "edges: [[0, 1]]\nlinks: []\n", ["links"]), ("syntax", "edges: [[0, 1]\n", ["YAML"]),
        ("bomb", BOMB + "\nedges: [[0, 1]]\n", ["alias"]),
        ("deep", "edges: " + "[" * 3000 + "]" * 3000 + "\n", ["nesting"]),
        ("self-alias", "edges: &a [*a]\n", ["self-referencing"]),
        ("bigint", "edges: [[" + "7" * 5000 + ", 1]]\n", ["digits"]),
        ("sensors-bad", "edges: [[0, 1]]\nsensors: {rule: magic}\n", ["sensors"]),
        ("id-huge-int", "edges: [[" + "9" * 30 + ", 1]]\n", ["edges[0]", "too long"]),
        ("id-long-name", "edges: [[" + "a" * 300 + ", 1]]\n", ["edges[0]", "too long"]),
        ("fusion-list", "edges: [[0, 1]]\nfusion: [0]\n", ["fusion"]),
    ]:
        cases.append((label, text, names))
    return cases


YAML_FILE_CASES = _yaml_cases()


def test_non_utf8_topology_file(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"edges: [[\xe9, 1]]\n")
    with pytest.raises(InlSimError) as info:
        read_topology_file(path)
    assert_clean(info.value, "latin.yaml", "UTF-8")


# --------------------------------------------------------------------------- GraphML topology files

def graphml(nodes: list[tuple[str, dict]], edges: list[tuple[str, str, dict]], *, keys: dict | None = None,
            directed: bool = False) -> str:
    """A GraphML document with string-typed attributes unless ``keys`` says otherwise."""
    names = sorted({k for _, a in nodes for k in a} | {k for *_, a in edges for k in a})
    types = keys or {}
    head = "".join(f'<key id="{k}" for="{"edge" if k in ("capacity_bps", "latency_s") else "node"}" '
                   f'attr.name="{k}" attr.type="{types.get(k, "string")}"/>' for k in names)
    body = "".join(f'<node id="{v}">' + "".join(f'<data key="{k}">{x}</data>' for k, x in a.items()) + "</node>"
                   for v, a in nodes)
    body += "".join(f'<edge source="{u}" target="{v}">' + "".join(f'<data key="{k}">{x}</data>'
                                                                   for k, x in a.items()) + "</edge>"
                    for u, v, a in edges)
    return ('<?xml version="1.0" encoding="UTF-8"?><graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
            f'{head}<graph edgedefault="{"directed" if directed else "undirected"}">{body}</graph></graphml>')


def _graphml_cases() -> list[tuple[str, str, list[str]]]:
    cases = []
    for key in ("Latitude", "Longitude", "lat", "lon", "x", "y"):
        other = {"Latitude": "Longitude", "Longitude": "Latitude", "lat": "lon", "lon": "lat", "x": "y", "y": "x"}[key]
        for label, value in [("empty", ""), ("word", "west"), ("nan", "nan"), ("inf", "inf")]:
            nodes = [("a", {key: value, other: "1.0"}), ("b", {})]
            cases.append((f"{key}-{label}", graphml(nodes, [("a", "b", {})]), ["node 'a'", key]))
    for key in ("capacity_bps", "latency_s"):
        for label, value in [("word", "fast"), ("negative", "-1"), ("nan", "nan"), ("huge", "1e308")]:
            cases.append((f"{key}-{label}", graphml([("a", {}), ("b", {})], [("a", "b", {key: value})]),
                          ["link 'a'-'b'", key]))
    for label, value in [("word", "fast"), ("zero", "0"), ("nan", "nan")]:
        cases.append((f"flops-{label}", graphml([("a", {"flops_per_s": value}), ("b", {})], [("a", "b", {})]),
                      ["node 'a'", "flops_per_s"]))
    cases += [
        ("typed-double-word", graphml([("a", {"Latitude": "west"}), ("b", {})], [("a", "b", {})],
                                      keys={"Latitude": "double"}), ["GraphML"]),
        ("ids-1-01", graphml([("1", {}), ("01", {})], [("1", "01", {})]), ["collide"]),
        ("ids-0-minus0", graphml([("0", {}), ("-0", {})], [("0", "-0", {})]), ["collide"]),
        ("directed", graphml([("a", {}), ("b", {})], [("a", "b", {})], directed=True), ["directed"]),
        ("self-loop", graphml([("a", {}), ("b", {})], [("a", "a", {}), ("a", "b", {})]), ["self-loop"]),
        ("not-xml", "this is not xml <graphml", ["GraphML"]),
        ("empty", "", ["GraphML"]),
    ]
    return cases


GRAPHML_CASES = _graphml_cases()
FILE_CASES = [("yaml", *c) for c in YAML_FILE_CASES] + [("graphml", *c) for c in GRAPHML_CASES]


@pytest.mark.parametrize("suffix,label,text,names", FILE_CASES, ids=[f"{c[0]}-{c[1]}" for c in FILE_CASES])
def test_bad_topology_file(tmp_path: Path, suffix: str, label: str, text: str, names: list[str]) -> None:
    path = tmp_path / f"bad-{label}.{suffix}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InlSimError) as info:
        read_topology_file(path)
    assert_clean(info.value, path.name, *names)


# --------------------------------------------------------------------------- the command line

def _cli_cases() -> list[tuple[str, list[str], list[str]]]:
    cases = []
    commands = {"run": [], "show": [], "compare": [], "sweep": ["--grid", "gate.beta=0,1e-3"], "rate-curve": [],
                "topologies compare": []}
    for command, extra in commands.items():
        argv = command.split()
        cases += [
            (f"{command}-missing-file", [*argv, "no/such/file.yaml", *extra], ["not found"]),
            (f"{command}-bomb", [*argv, "{bomb}", *extra], ["alias"]),
            (f"{command}-bad-set-value", [*argv, str(MESH9.parent.parent / "scenarios" / "quickstart.yaml"),
                                          "--set", "training.epochs=ten", *extra], ["training.epochs"]),
            (f"{command}-unknown-set-key", [*argv, "quickstart", "--set", "training.epoch=1", *extra],
             ["training.epoch"]),
            (f"{command}-bigint-set", [*argv, "quickstart", "--set", "seed=" + "9" * 5000, *extra], ["seed"]),
            (f"{command}-bad-gate", [*argv, "quickstart", "--set", "gate.kind=magic", *extra], ["gate.kind"]),
            (f"{command}-over-budget", [*argv, "quickstart", "--set", "training.epochs=1000000000", *extra],
             ["training.epochs", "--force"]),
        ]
    for command in ("compare", "sweep", "topologies compare"):
        extra = commands[command]
        for label, value in [("zero", "0"), ("negative", "-1"), ("huge", "99999999999999"), ("word", "many")]:
            cases.append((f"{command}-seeds-{label}", [*command.split(), "quickstart", "--seeds", value, *extra],
                          ["--seeds"]))
        cases.append((f"{command}-jobs-zero", [*command.split(), "quickstart", "--jobs", "0", *extra], ["--jobs"]))
    cases += [
        ("sweep-bad-grid-value", ["sweep", "quickstart", "--grid", "gate.kind=none,magic"], ["gate.kind"]),
        ("sweep-bad-grid-key", ["sweep", "quickstart", "--grid", "gate.bta=0,1"], ["gate.bta"]),
        ("sweep-grid-no-values", ["sweep", "quickstart", "--grid", "gate.beta="], ["--grid"]),
        ("sweep-grid-too-large", ["sweep", "quickstart", "--grid", "gate.beta=" + ",".join(map(str, range(200))),
                                  "--grid", "training.lr=" + ",".join(f"{i + 1}e-3" for i in range(200))], ["--grid"]),
        ("compare-bad-mode", ["compare", "quickstart", "--modes", "dense,magic"], ["routing.mode"]),
        ("run-bad-seed", ["run", "quickstart", "--seed", "-3"], ["seed"]),
        ("report-missing", ["report", "no/such/folder"], ["no/such/folder"]),
        ("scenarios-unknown-action", ["scenarios", "bogus"], ["bogus"]),
        ("unknown-command", ["fly"], ["fly"]),
        ("run-folder-as-scenario", ["run", "{tmp}"], ["folder"]),
        ("run-unknown-shipped-name", ["run", "quickstrat"], ["quickstrat", "quickstart"]),
    ]
    return cases


CLI_CASES = _cli_cases()


@pytest.mark.parametrize("label,argv,names", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_bad_cli_input_exits_2_with_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture, label: str,
                                                   argv: list[str], names: list[str]) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB + "\nname: bomb\n", encoding="utf-8")
    argv = [a.replace("{bomb}", str(bomb)).replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        code = cli.main([*argv, *(["--no-progress"] if argv[0] not in ("report", "scenarios", "fly") else [])])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err[:300]
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in err, err[:600]
    assert len(lines[0]) <= MAX_LINE + 120, lines[0][:300]
    for name in names:
        assert name in lines[0], f"{name!r} not in {lines[0][:300]!r}"
