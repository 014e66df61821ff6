"""Topology survey: one scenario over several topologies, dense INL beside D-INL.

For every topology (a file, or a generator with a node count) the scenario's topology
section is substituted, both training graphs are built, and, unless only the structure
is asked for, dense INL and D-INL are trained over the seeds with the machinery of
:mod:`inl_sim.study.comparison` (one progress bar and one worker pool over all runs).  The table
has one flat row per topology: nodes, links, dense edges, tree edges, the structural
ratio tree/dense = (n_live - 1) / |E_dense|, the measured exchange reduction, simulated
time per epoch and accuracy of both modes (mean ± sample std over seeds).

Substitution keeps everything of the scenario's topology section except its source and
roles: ``file``/``generator``/``n_nodes``/``params``/``nodes``/``edges`` are replaced,
``fusion`` and ``sensors`` are reset to null, so a file brings its own roles and a
generated graph gets the defaults (fusion ``most_central``, every other node a sensor).
``sensors=`` (CLI ``--sensors k_random:8``) sets the sensors of every topology instead.
Link/node distributions, ``topology.seed`` and ``ensure_connected`` are the scenario's.

With fixed-width messages (``float32``, ``float16``, ``int8`` both ways) every active
edge carries equal bytes each step, so the measured reduction must equal the structural
one; each row says whether it does (``exchange_matches_structure``), checked exactly in
integers per seed.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from inl_sim import __version__
from inl_sim.errors import InlSimError, TopologyError
from inl_sim.study.experiment import RunResult, nominal_bits_per_value
from inl_sim.study.topochoices import (DEFAULT_GENERATORS, TopologyChoice, default_choices, file_choice,
                                      generator_choice, library_choice, parse_choices, parse_sensors, parse_topology)
from inl_sim.network import TOPOLOGY_DIR, build_network, read_topology_file, shipped_topologies
from inl_sim.study.folders import claim_dir, folder_names, study_folder
from inl_sim.study.results import write_json, write_table
from inl_sim.network.routing import build_training_graph
from inl_sim.scenario import Scenario, TopologySpec, load_scenario, scenario_to_dict, with_overrides
from inl_sim.study.comparison import _resolve_seeds, run_tasks, summary_rows

__all__ = [
    "TopologyChoice", "TopologySurvey", "DEFAULT_GENERATORS", "FIXED_WIDTH_ENCODINGS", "MODES",
    "file_choice", "generator_choice", "library_choice", "parse_topology", "parse_choices", "default_choices",
    "parse_sensors", "structure_row", "compare_topologies", "format_survey_markdown",
    "list_topologies", "format_list_markdown",
]

log = logging.getLogger(__name__)

MODES = ("dense", "spt")
#: encodings whose message size depends on the tensor shape only
FIXED_WIDTH_ENCODINGS = ("float32", "float16", "int8")


def _variant(scenario: Scenario, choice: TopologyChoice, sensors: Any) -> Scenario:
    overrides = dict(choice.overrides)
    if sensors is not None:
        overrides["topology.sensors"] = parse_sensors(sensors)
    return with_overrides(scenario, overrides)


def structure_row(scenario: Scenario, choice: TopologyChoice, *, seed: int, sensors: Any = None) -> dict[str, Any]:
    """The structural columns of one topology: instant, no training.

    ``structural_ratio`` is tree edges / dense edges, i.e. (n_live - 1) / |E_dense|,
    the exchange ratio D-INL / dense INL for equal message widths (METHOD.md).
    """
    try:
        sc = _variant(scenario, choice, sensors)
        network = build_network(sc.topology, seed=seed)
    except InlSimError as exc:  # name the topology the user listed, then the field
        raise type(exc)(f"topology {choice.label!r}: {exc}") from None
    payload_bits = sc.model.latent_dim * nominal_bits_per_value(sc.message.encoding, sc.message.bits)
    dense, spt = (build_training_graph(network, mode, cost=sc.routing.cost, payload_bits=payload_bits,
                                       dense_ties=sc.routing.dense_ties) for mode in MODES)
    ratio = spt.n_edges / dense.n_edges
    return {"topology": choice.label, "name": network.name, "n_nodes": network.graph.number_of_nodes(),
            "n_links": network.graph.number_of_edges(), "n_sensors": len(network.sensors),
            "fusion": network.fusion, "dense_edges": dense.n_edges, "tree_edges": spt.n_edges,
            "n_live": len(spt.order), "structural_ratio": ratio, "structural_reduction": 1.0 - ratio}


@dataclass(frozen=True)
class TopologySurvey:
    """Rows (one per topology) and, unless structure-only, the runs behind them:
    ``runs[label][mode]`` lists one :class:`RunResult` per seed, in seed order."""

    topologies: tuple[TopologyChoice, ...]
    seeds: tuple[int, ...]
    rows: list[dict[str, Any]]
    runs: dict[str, dict[str, list[RunResult]]]
    out_dir: Path | None = None

    def to_markdown(self) -> str:
        return format_survey_markdown(self.rows)

    def row(self, label: str) -> dict[str, Any]:
        return next(r for r in self.rows if r["topology"] == label)


def compare_topologies(scenario: Scenario | str | Path | Mapping,
                       topologies: Sequence[TopologyChoice | str] | None = None, *,
                       seeds: int | Sequence[int] | None = None, sensors: Any = None,
                       structure_only: bool = False, out_dir: str | Path | None = None, jobs: int | None = None,
                       progress: bool | None = False, fresh: bool = False, executor: str | None = None,
                       ray_address: str | None = None) -> TopologySurvey:
    """Tabulate structure and, unless ``structure_only``, dense vs D-INL training per topology.

    Parameters
    ----------
    scenario
        The base scenario; its topology section is replaced per topology.
    topologies
        Choices or strings (``mesh9.yaml``, ``knn:50``); default :func:`default_choices`.
    seeds
        A count or seeds; default ``scenario.compare.seeds``.  Structure uses the first.
    sensors
        Sensors of every topology (``k_random:8`` or any ``topology.sensors`` value);
        default: the file's own, else all non-fusion nodes.
    out_dir
        ``survey.md/.csv/.json`` and ``runs/<topology>.<mode>/seed<k>``; locked while the
        survey runs; finished runs there are reused unless ``fresh`` (as in ``compare``).
    jobs, progress, executor, ray_address
        Where runs execute and the progress bar over runs, as in :func:`inl_sim.compare`.

    Raises
    ------
    InlSimError
        For a bad topology, file or sensor rule, before any training starts.
    """
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    choices = tuple(parse_topology(c) if isinstance(c, str) else c for c in (topologies or default_choices()))
    labels = [c.label for c in choices]
    if len(set(labels)) != len(labels) or not labels:
        raise TopologyError(f"topologies: {labels} must be a non-empty list without repeats; list each once")
    seed_list = _resolve_seeds(sc, seeds)
    if sc.topology.seed is None and not structure_only:
        log.warning("topology.seed is null: each run seed draws its own graph; structural columns "
                    "describe seed %d's draw", seed_list[0])
    rows = [structure_row(sc, c, seed=seed_list[0], sensors=sensors) for c in choices]
    out = Path(out_dir) if out_dir is not None else None
    names = folder_names([f"{c.label}.{m}" for c in choices for m in MODES], "topologies")
    where = {"jobs": jobs, "executor": executor, "ray_address": ray_address, "progress": progress, "fresh": fresh}
    with study_folder(out, "topologies") if out is not None else nullcontext(None) as folder:
        root = None if folder is None else claim_dir(folder / "runs", "runs")
        runs = {} if structure_only else _train(sc, choices, sensors, seed_list, root, names, where)
        rows = [_with_runs(row, runs[row["topology"]], sc) if runs else row for row in rows]
        if folder is not None:
            _write(folder, rows, sc, seed_list, structure_only)
    return TopologySurvey(choices, seed_list, rows, runs, out)


def _train(sc: Scenario, choices: Sequence[TopologyChoice], sensors: Any, seeds: Sequence[int], root: Path | None,
           names: Mapping[str, str], where: Mapping[str, Any]) -> dict[str, dict[str, list[RunResult]]]:
    """Every (topology, mode, seed) run through study's executor (resuming finished runs
    under ``root``); grouped in seed order."""
    modes = {(c.label, m): with_overrides(_variant(sc, c, sensors), {"routing.mode": m})
             for c in choices for m in MODES}
    tasks = [(variant, s, f"{label}.{mode}") for (label, mode), variant in modes.items() for s in seeds]
    results = run_tasks(tasks, root, names, **where)
    grouped: dict[str, dict[str, list[RunResult]]] = {c.label: {m: [] for m in MODES} for c in choices}
    for (_, _, name), result in zip(tasks, results):
        label, _, mode = name.rpartition(".")
        grouped[label][mode].append(result)
    return grouped


def _matches_structure(runs: Mapping[str, Sequence[RunResult]], sc: Scenario) -> bool | None:
    """spt/dense bytes == spt/dense edges, per seed, in integers; None when not fixed width."""
    if sc.message.encoding not in FIXED_WIDTH_ENCODINGS or sc.message.grad_encoding not in FIXED_WIDTH_ENCODINGS:
        return None
    return all(s.exchange_bytes * d.n_active_edges == d.exchange_bytes * s.n_active_edges
               for d, s in zip(runs["dense"], runs["spt"]))


def _with_runs(row: dict[str, Any], runs: Mapping[str, Sequence[RunResult]], sc: Scenario) -> dict[str, Any]:
    dense, spt = summary_rows(runs, reference="dense")
    out = {**row, "n_seeds": spt["n_seeds"], "epochs": sc.training.epochs,
           "exchange_reduction": spt["exchange_reduction"],
           "exchange_matches_structure": _matches_structure(runs, sc)}
    for key in ("exchange_bytes", "sim_time_per_epoch_s", "accuracy"):
        for mode, summary in (("dense", dense), ("spt", spt)):
            out[f"{key}_{mode}_mean"], out[f"{key}_{mode}_std"] = summary[f"{key}_mean"], summary[f"{key}_std"]
    out["accuracy_gap"], out["accuracy_within_1std"] = spt["accuracy_gap"], spt["accuracy_within_1std"]
    out.update({k: v for k, v in spt.items() if k.startswith("paired_") or k == "accuracy_ci_contains_0"})
    if out["exchange_matches_structure"] is False:
        log.warning("%s: measured exchange reduction %.6f differs from the structural %.6f with fixed-width "
                    "messages", row["topology"], out["exchange_reduction"], row["structural_reduction"])
    return out


def _write(folder: Path, rows: list[dict], sc: Scenario, seeds: Sequence[int], structure_only: bool) -> None:
    meta = {"scenario": sc.name, "seeds": list(seeds), "epochs": None if structure_only else sc.training.epochs,
            "structure_only": structure_only, "package_version": __version__,
            "resolved_scenario": scenario_to_dict(sc)}
    write_json(folder / "survey.json", {**meta, "rows": rows})
    write_table(folder / "survey.csv", rows)
    (folder / "survey.md").write_text(format_survey_markdown(rows), encoding="utf-8")


def _pm(row: Mapping[str, Any], key: str, pattern: str) -> str:
    mean, std = row.get(f"{key}_mean"), row.get(f"{key}_std")
    if mean is None or mean != mean:
        return "n/a"
    return f"{pattern.format(mean)} ± {pattern.format(std)}"


def _check(value: bool | None) -> str:
    return {True: "ok", False: "MISMATCH", None: "n/a"}[value]


def _table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines) + "\n"


def format_survey_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table; the training columns appear when the rows have them."""
    trained = any("exchange_reduction" in r for r in rows)
    header = ["topology", "nodes", "links", "sensors", "dense edges", "tree edges", "tree/dense",
              "structural reduction"]
    if trained:
        header += ["measured reduction", "check", "sim time/epoch dense (s)", "sim time/epoch spt (s)",
                   "accuracy dense", "accuracy spt"]
    body = []
    for r in rows:
        cells = [str(r["topology"]), str(r["n_nodes"]), str(r["n_links"]), str(r["n_sensors"]),
                 str(r["dense_edges"]), str(r["tree_edges"]), f"{r['structural_ratio']:.4f}",
                 f"{r['structural_reduction']:.1%}"]
        if trained:
            cells += [f"{r['exchange_reduction']:.1%}", _check(r["exchange_matches_structure"]),
                      _pm(r, "sim_time_per_epoch_s_dense", "{:.3f}"), _pm(r, "sim_time_per_epoch_s_spt", "{:.3f}"),
                      _pm(r, "accuracy_dense", "{:.4f}"), _pm(r, "accuracy_spt", "{:.4f}")]
        body.append(cells)
    return _table(header, body)


def list_topologies() -> list[dict[str, Any]]:
    """One row per shipped topology file: its nodes, links and own (or default) roles."""
    rows = []
    for name in shipped_topologies():
        _, meta = read_topology_file(TOPOLOGY_DIR / name)
        network = build_network(TopologySpec(file=name), seed=0, base_dir=TOPOLOGY_DIR)
        rows.append({"file": name, "name": meta.get("name", network.name),
                     "n_nodes": network.graph.number_of_nodes(), "n_links": network.graph.number_of_edges(),
                     "fusion": network.fusion, "n_sensors": len(network.sensors),
                     "description": " ".join(str(meta.get("description", "")).split())})
    return rows


def format_list_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The ``topologies list`` table."""
    return _table(["file", "nodes", "links", "fusion", "sensors", "description"],
                  [[str(r["file"]), str(r["n_nodes"]), str(r["n_links"]), str(r["fusion"]), str(r["n_sensors"]),
                    r["description"]] for r in rows])
