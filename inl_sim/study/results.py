"""Result folders: written atomically, read back for reports.

A run folder holds ``scenario.resolved.yaml`` (every option, defaults included),
``summary.json``, ``history.csv``/``history.json`` (one row per epoch),
``transfers.csv`` and ``transfers.parquet`` (one row per crossing of a link), ``network.json``,
``training_graph.json`` and ``energy.json`` (joules per node and per directed link).  A folder is first written under a hidden temporary name and
renamed into place only when complete, so a failed or interrupted run never leaves a
half-written folder nor damages the results that were there before; every JSON and CSV
file is replaced atomically too.  Which folders may be replaced, and the marker that
says so, live in :mod:`inl_sim.study.folders`.  JSON is strict: a non-finite number is
written as the string ``"NaN"``/``"Infinity"``/``"-Infinity"`` (never ``null``, which
means "missing") and read back as a float.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from inl_sim.sim.accounting import FIELDS, write_parquet, write_records
from inl_sim.errors import ResultsError
from inl_sim.scenario import scenario_to_dict
from inl_sim.study.folders import atomic_dir, write_text_atomic

__all__ = ["atomic_dir", "write_run", "read_run", "write_table", "write_json", "read_json", "network_to_dict"]


_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _clean(value: Any) -> Any:
    """JSON-safe: non-finite floats -> "NaN"/"Infinity"/"-Infinity" (never null, which
    means missing), tuples -> lists, non-string keys -> strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _restore(value: Any) -> Any:
    if isinstance(value, str):
        return _NONFINITE.get(value, value)
    if isinstance(value, dict):
        return {k: _restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    """Strict JSON (``allow_nan=False``), written atomically."""
    write_text_atomic(Path(path), json.dumps(_clean(data), indent=2, sort_keys=False, allow_nan=False) + "\n")


def read_json(path: Path) -> Any:
    """Read what :func:`write_json` wrote; "NaN"/"Infinity"/"-Infinity" values become floats again."""
    if not path.is_file():
        raise ResultsError(f"{path}: missing; is this a results folder written by inl-sim?")
    return _restore(json.loads(path.read_text(encoding="utf-8")))


def write_table(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """CSV with the union of the rows' keys as header (first-seen order)."""
    header: list[str] = []
    for row in rows:
        header += [k for k in row if k not in header]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header)
    writer.writeheader()
    writer.writerows([{k: _csv_cell(v) for k, v in row.items()} for row in rows])
    write_text_atomic(Path(path), buf.getvalue())


def _csv_cell(value: Any) -> Any:
    return "" if value is None else value


def network_to_dict(network: Any) -> dict:
    """Nodes (roles, positions, speeds) and links (capacity, latency) of a network."""
    g = network.graph
    nodes = [{"id": v, "role": d.get("role"), "label": d.get("label", str(v)),
              "pos": list(d["pos"]) if d.get("pos") is not None else None,
              "flops_per_s": d.get("flops_per_s")} for v, d in g.nodes(data=True)]
    links = [{"u": u, "v": v, "capacity_bps": d["capacity_bps"], "latency_s": d["latency_s"]}
             for u, v, d in g.edges(data=True)]
    return {"name": network.name, "fusion": network.fusion, "sensors": list(network.sensors),
            "nodes": nodes, "links": links}


def write_run(result: Any, out_dir: Path, *, overwrite: bool = False, run_key: str | None = None) -> Path:
    """Write one run folder atomically; return its path.

    An existing folder is replaced only with ``overwrite`` and only if inl-sim made it
    (see :mod:`inl_sim.study.folders`); ``run_key`` is stamped in its marker so that a
    resumed study can tell which runs are finished.
    """
    resolved = scenario_to_dict(result.scenario)
    resolved["seed"] = result.seed
    extra = {"method": result.method, "seed": result.seed, "status": getattr(result, "status", "ok"),
             "run_key": run_key}
    with atomic_dir(Path(out_dir), overwrite=overwrite, stamp_extra=extra) as tmp:
        (tmp / "scenario.resolved.yaml").write_text(
            f"# resolved scenario of method {result.method!r}, seed {result.seed}\n"
            + yaml.safe_dump(resolved, sort_keys=False), encoding="utf-8")
        write_json(tmp / "summary.json", result.summary())
        write_json(tmp / "history.json", result.history)
        write_table(tmp / "history.csv", result.history)
        write_records(tmp / "transfers.csv", result.transfers)
        write_parquet(tmp / "transfers.parquet", result.transfers)
        write_json(tmp / "network.json", network_to_dict(result.network))
        write_json(tmp / "training_graph.json", result.graph.to_dict())
        if getattr(result, "energy", None) is not None:
            write_json(tmp / "energy.json", result.energy.to_json())
        if getattr(result, "faults", None):
            write_json(tmp / "faults.json", result.faults)
    return Path(out_dir)


def read_run(run_dir: Path) -> dict[str, Any]:
    """Load a run folder: summary, history, transfers (list of dicts), network, graph."""
    run_dir = Path(run_dir)
    out = {name: read_json(run_dir / f"{name}.json")
           for name in ("summary", "history", "network", "training_graph")}
    out["transfers"] = _read_transfers(run_dir / "transfers.csv")
    return out


def _read_transfers(path: Path) -> list[dict]:
    if not path.is_file():
        raise ResultsError(f"{path}: missing; the run folder is incomplete, re-run it")
    numeric = {"epoch": int, "step": int, "n_values": int, "nbytes": int,
               "t_send_s": float, "t_start_s": float, "t_arrive_s": float, "attempt": int,
               "delivered": lambda v: v == "True"}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        # folders written before the attempt/delivered columns hold the first ten fields
        if tuple(reader.fieldnames or ()) not in (FIELDS, FIELDS[:10]):
            raise ResultsError(f"{path}: header {reader.fieldnames} is not {list(FIELDS)}")
        return [{k: numeric[k](v) if k in numeric else v for k, v in row.items()} for row in reader]
