"""Resume: which runs of a study folder are finished, and what they computed.

A run is identified by :func:`run_key`, a hash of everything that determines its
numbers: the resolved scenario (every option, defaults included), the seed, the method
name and the package version.  A study writes each run folder as soon as the run ends,
with the key in the folder's marker (:mod:`inl_sim.study.folders`); a later study on the
same folder reuses a run whose key matches instead of training it again, so a study
killed by SIGKILL, SIGTERM or SIGINT loses only the runs in flight.  A changed scenario,
seed, method or version changes the key, and the run is trained again.

A reused run is a :class:`StoredRun`: the summary, history and (lazily) transfer records
read back from its folder.  Tables derive from summaries only, so a resumed study ends
with the same tables as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inl_sim import __version__
from inl_sim.errors import ResultsError
from inl_sim.scenario import Scenario, scenario_to_dict
from inl_sim.sim.accounting import Transfer
from inl_sim.study.folders import read_stamp
from inl_sim.study.results import read_json, read_run

__all__ = ["run_key", "StoredRun", "load_finished"]


def run_key(scenario: Scenario, seed: int, method: str) -> str:
    """SHA-256 of (resolved scenario, seed, method, package version) as canonical JSON."""
    payload = {"scenario": scenario_to_dict(scenario), "seed": int(seed), "method": method,
               "package_version": __version__}
    text = json.dumps(payload, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoredRun:
    """A finished run read back from its folder; numbers come from ``summary.json``.

    Attribute access falls through to the summary (``run.accuracy``,
    ``run.exchange_bytes``, ``run.n_active_edges``...), so tables and checks written
    for :class:`~inl_sim.study.experiment.RunResult` work on it unchanged.
    """

    scenario: Scenario
    seed: int
    method: str
    folder: Path
    data: dict = field(repr=False)
    history: list = field(repr=False)

    def summary(self) -> dict[str, Any]:
        return dict(self.data)

    @property
    def status(self) -> str:
        return self.data.get("status", "ok")

    @property
    def transfers(self) -> list:
        """The transfer records, read from ``transfers.csv`` on first use."""
        return [Transfer(**row) for row in read_run(self.folder)["transfers"]]

    def __getattr__(self, name: str) -> Any:
        data = self.__dict__.get("data") or {}
        if name in data:
            return data[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")


def load_finished(folder: Path, key: str, scenario: Scenario, seed: int, method: str) -> StoredRun | None:
    """The finished run in ``folder`` if its marker carries ``key``, else None."""
    stamp = read_stamp(folder)
    if not stamp or stamp.get("run_key") != key:
        return None
    try:
        summary = read_json(folder / "summary.json")
        history = read_json(folder / "history.json")
    except (ResultsError, ValueError):
        return None  # damaged by hand: train it again
    return StoredRun(scenario, seed, method, Path(folder), summary, history)
