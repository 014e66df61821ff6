"""One training run: scenario in, :class:`RunResult` (and a results folder) out.

``run`` wires the pieces (:func:`~inl_sim.study.setup.prepare`, then
:func:`~inl_sim.study.training.train`), and returns a :class:`RunResult` whose numbers
all derive from the transfer records and the history.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Hashable, Iterator, Mapping

import torch

from inl_sim import __version__
from inl_sim.learning.gating import GATES
from inl_sim.network import Network
from inl_sim.network.routing import TrainingGraph
from inl_sim.scenario import Scenario, load_scenario
from inl_sim.sim.accounting import Transfer
from inl_sim.sim.metrics import exchange_bytes
from inl_sim.study.setup import RunSetup, check_seed, prepare
from inl_sim.study.show import nominal_bits_per_value
from inl_sim.study.training import evaluate, link_rate_bits, train

__all__ = ["RunSetup", "RunResult", "prepare", "train", "run", "evaluate", "nominal_bits_per_value"]

NodeId = Hashable


@dataclass(frozen=True)
class RunResult:
    """The outcome of one training run; every number derives from records or history.

    ``rate_bits`` is the estimated latent rate per sample summed over active links
    (None when the gate has no rate), measured on the test set after training with the
    estimator named in ``rate_estimator``.
    """

    scenario: Scenario
    seed: int
    method: str
    network: Network
    graph: TrainingGraph
    accuracy: float
    test_loss: float
    exchange_bytes: int
    exchange_bytes_forward: int
    exchange_bytes_backward: int
    sim_time_s: float
    wall_time_s: float
    rate_bits: float | None
    rate_bits_per_link: dict
    rate_estimator: str
    history: list[dict]
    transfers: list[Transfer] = field(repr=False)
    # the final model on the training split, evaluated exactly as the test split is
    train_accuracy: float = math.nan
    train_loss: float = math.nan

    @property
    def active_edges(self) -> tuple[tuple[NodeId, NodeId], ...]:
        return self.graph.edges

    @property
    def n_active_edges(self) -> int:
        return len(self.graph.edges)

    @property
    def generalisation_gap(self) -> float:
        """Train accuracy minus test accuracy of the final model (same evaluation path)."""
        return self.train_accuracy - self.accuracy

    @property
    def sim_time_per_epoch_s(self) -> float:
        return self.sim_time_s / max(1, len(self.history))

    def summary(self) -> dict[str, Any]:
        """The flat numbers written to ``summary.json``."""
        return {
            "method": self.method, "mode": self.graph.mode, "seed": self.seed,
            "scenario": self.scenario.name, "accuracy": self.accuracy, "test_loss": self.test_loss,
            "train_accuracy": self.train_accuracy, "train_loss": self.train_loss,
            "generalisation_gap": self.generalisation_gap,
            "exchange_bytes": self.exchange_bytes, "exchange_bytes_forward": self.exchange_bytes_forward,
            "exchange_bytes_backward": self.exchange_bytes_backward, "sim_time_s": self.sim_time_s,
            "sim_time_per_epoch_s": self.sim_time_per_epoch_s, "wall_time_s": self.wall_time_s,
            "n_active_edges": self.n_active_edges, "n_nodes": self.network.graph.number_of_nodes(),
            "n_links": self.network.graph.number_of_edges(), "epochs": len(self.history),
            "rate_bits": self.rate_bits, "rate_estimator": self.rate_estimator,
            "rate_bits_per_link": {f"{c}->{p}": r for (c, p), r in self.rate_bits_per_link.items()},
            "gate": self.scenario.gate.kind, "beta": self.scenario.gate.beta,
            "encoding": self.scenario.message.encoding, "n_transfers": len(self.transfers),
            "package_version": __version__, "torch_version": torch.__version__,
        }


def run(scenario: Scenario | str | Path | Mapping, seed: int | None = None, *, method: str | None = None,
        out_dir: str | Path | None = None, progress: bool | None = False,
        threads: int | None = 1) -> RunResult:
    """Train one scenario for one seed and evaluate it on the test set after every epoch.

    Parameters
    ----------
    scenario
        A Scenario, a YAML path or a dict (see :func:`inl_sim.load_scenario`).
    seed
        Run seed (default: ``scenario.seed``); it derives every RNG of the run.
    method
        Label of the run in tables (default: the routing mode).
    out_dir
        If given, the run folder is written there atomically (see ``inl_sim.study.results``).
    progress
        Show a progress bar over epochs (None: only on an interactive terminal).
    threads
        torch intra-op threads during the run, restored afterwards (None: leave torch's
        setting).  The default 1 is fastest for INL's small per-node modules; extra
        threads only add synchronisation, and oversubscribe a loaded machine badly.
    """
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    seed = check_seed(sc.seed if seed is None else seed)
    label = method or sc.routing.mode
    with _torch_threads(threads):
        t0 = time.perf_counter()
        setup = prepare(sc, seed)
        history = train(setup, label=label, progress=progress, t0=t0)
        result = _result(setup, label, history, time.perf_counter() - t0)
    if out_dir is not None:
        from inl_sim.study.results import write_run
        write_run(result, Path(out_dir))
    return result


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Set torch's intra-op thread count for a block and restore it."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _result(setup: RunSetup, label: str, history: list[dict], wall_s: float) -> RunResult:
    final = evaluate(setup)
    on_train = evaluate(setup, split="train")
    totals = exchange_bytes(setup.ledger.records)
    per_link = link_rate_bits(setup.graph, final["rate_nats"])
    gate_cls = GATES.get(setup.scenario.gate.kind)
    return RunResult(
        scenario=setup.scenario, seed=setup.seed, method=label, network=setup.network, graph=setup.graph,
        accuracy=final["accuracy"], test_loss=final["loss"], exchange_bytes=totals["total"],
        exchange_bytes_forward=totals["forward"], exchange_bytes_backward=totals["backward"],
        sim_time_s=float(setup.engine.env.now), wall_time_s=wall_s,
        rate_bits=sum(per_link.values()) if per_link else None, rate_bits_per_link=per_link,
        rate_estimator=getattr(gate_cls, "estimator", "n/a"), history=history,
        transfers=list(setup.ledger.records), train_accuracy=on_train["accuracy"], train_loss=on_train["loss"],
    )
