"""One training run: scenario in, :class:`RunResult` (and a results folder) out.

``run`` wires the pieces (:func:`~inl_sim.study.setup.prepare`, then
:func:`~inl_sim.study.training.train`), and returns a :class:`RunResult` whose numbers
all derive from the transfer records and the history.
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Hashable, Iterator, Mapping

import torch

from inl_sim import __version__
from inl_sim.errors import DivergedError
from inl_sim.learning.gating import GATES
from inl_sim.learning.rates import ESTIMATOR_NAMES, RATE_DESCRIPTIONS, prior_nbytes
from inl_sim.network import Network
from inl_sim.network.routing import TrainingGraph
from inl_sim.scenario import Scenario, load_scenario
from inl_sim.sim.accounting import TransferTable
from inl_sim.sim.energy import Energy, run_energy, training_flops
from inl_sim.sim.metrics import exchange_bytes, time_to_fraction
from inl_sim.study.paradigms import RUNNERS, Outcome
from inl_sim.study.routed import inl_inference_cost, prepare_routed
from inl_sim.study.setup import RunSetup, check_seed, prepare
from inl_sim.study.show import nominal_bits_per_value
from inl_sim.study.training import estimator_rate_bits, evaluate, link_rate_bits, train

__all__ = ["RunSetup", "RunResult", "prepare", "train", "run", "evaluate", "nominal_bits_per_value"]

NodeId = Hashable
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    """The outcome of one training run; every number derives from records or history.

    ``rate_bits`` is the estimated latent rate per sample summed over active links
    (None when the gate has no rate), measured on the test set after training with the
    estimator named in ``rate_estimator``.  A run whose training went non-finite has
    ``status == "diverged"``, NaN accuracy and loss (never a number that looks like a
    result) and the bytes it exchanged until it stopped.
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
    transfers: TransferTable = field(repr=False)  # columns; iterates as Transfer records
    #: "ok", or "diverged" (then ``diverged`` holds epoch, step, node and the reason)
    status: str = "ok"
    diverged: dict | None = None
    accuracy_sampled: float | None = None
    rate_bits_by_estimator: dict = field(default_factory=dict)
    rate_prior_nbytes: int | None = None
    energy: Energy | None = field(default=None, repr=False)
    #: with a faults section: totals from the records, drop counters, repairs and the timeline
    faults: dict | None = field(default=None, repr=False)
    # the final model on the training split, evaluated exactly as the test split is
    train_accuracy: float = math.nan
    train_loss: float = math.nan
    #: bytes by direction beyond INL's: federated parameters, centralised raw views
    exchange_bytes_parameters: int = 0
    exchange_bytes_raw_data: int = 0
    #: classifying one test sample over the network, apart from training
    inference_bytes_per_sample: int | None = None
    inference_latency_s: float | None = None
    #: paradigm-specific numbers (e.g. federated accuracy per client and with late fusion)
    extra: dict = field(default_factory=dict)

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
            "method": self.method, "mode": self.graph.mode, "paradigm": self.scenario.paradigm, "seed": self.seed,
            "scenario": self.scenario.name, "accuracy": self.accuracy, "test_loss": self.test_loss,
            "train_accuracy": self.train_accuracy, "train_loss": self.train_loss,
            "generalisation_gap": self.generalisation_gap,
            "exchange_bytes": self.exchange_bytes, "exchange_bytes_forward": self.exchange_bytes_forward,
            "exchange_bytes_backward": self.exchange_bytes_backward,
            "exchange_bytes_parameters": self.exchange_bytes_parameters,
            "exchange_bytes_raw_data": self.exchange_bytes_raw_data, "sim_time_s": self.sim_time_s,
            "time_to_95pct_s": time_to_fraction(self.history, 0.95),
            "inference_bytes_per_sample": self.inference_bytes_per_sample,
            "inference_latency_s": self.inference_latency_s, **self.extra,
            "sim_time_per_epoch_s": self.sim_time_per_epoch_s, "wall_time_s": self.wall_time_s,
            "n_active_edges": self.n_active_edges, "n_nodes": self.network.graph.number_of_nodes(),
            "n_links": self.network.graph.number_of_edges(), "epochs": len(self.history),
            "rate_bits": self.rate_bits, "rate_estimator": self.rate_estimator,
            "accuracy_sampled": self.accuracy_sampled, "rate_penalised": self.scenario.gate.rate,
            **{f"rate_bits_{k}": self.rate_bits_by_estimator.get(k) for k in ESTIMATOR_NAMES},
            "rate_prior_nbytes": self.rate_prior_nbytes,
            "rate_bits_per_link": {f"{c}->{p}": r for (c, p), r in self.rate_bits_per_link.items()},
            "gate": self.scenario.gate.kind, "beta": self.scenario.gate.beta,
            "encoding": self.scenario.message.encoding, "n_transfers": len(self.transfers),
            "engine": self.scenario.simulation.engine, "device": self.scenario.simulation.device,
            "package_version": __version__, "torch_version": torch.__version__, "status": self.status,
            **({f"diverged_{k}": v for k, v in self.diverged.items()} if self.diverged else {}),
            **(self.energy.summary() if self.energy is not None else {}),
            **({k: v for k, v in self.faults.items() if k != "timeline"} if self.faults else {}),
        }


def run(scenario: Scenario | str | Path | Mapping, seed: int | None = None, *, method: str | None = None,
        out_dir: str | Path | None = None, progress: bool | None = False,
        threads: int | None = 1, overwrite: bool = False) -> RunResult:
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
        An existing non-empty folder is refused before training unless ``overwrite`` and
        inl-sim made it (:mod:`inl_sim.study.folders`).
    progress
        Show a progress bar over epochs (None: only on an interactive terminal).
    threads
        torch intra-op threads during the run, restored afterwards (None: leave torch's
        setting).  The default 1 is fastest for INL's small per-node modules; extra
        threads only add synchronisation, and oversubscribe a loaded machine badly.

    A non-finite loss stops training (:class:`~inl_sim.errors.DivergedError`); the run
    is then returned (and written) with ``status == "diverged"`` instead of raising, so
    that a study keeps it and lists it.
    """
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    seed = check_seed(sc.seed if seed is None else seed)
    label = method or (sc.routing.mode if sc.paradigm == "inl" else sc.paradigm)
    if out_dir is not None:
        from inl_sim.study.folders import check_run_target
        check_run_target(Path(out_dir), overwrite)  # before training, not after
    with _torch_threads(threads):
        t0 = time.perf_counter()
        if sc.paradigm != "inl":
            result = run_routed(sc, seed, label, t0)
            if out_dir is not None:
                from inl_sim.study.results import write_run
                write_run(result, Path(out_dir), overwrite=overwrite)
            return result
        setup = prepare(sc, seed)
        try:
            history = train(setup, label=label, progress=progress, t0=t0)
            result = _result(setup, label, history, time.perf_counter() - t0)
        except DivergedError as exc:
            log.info("%s %s seed %d diverged: %s", sc.name, label, seed, exc)
            result = _diverged(setup, label, exc, time.perf_counter() - t0)
    if out_dir is not None:
        from inl_sim.study.results import write_run
        write_run(result, Path(out_dir), overwrite=overwrite)
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
    final = setup.last_evaluation if setup.last_evaluation is not None else evaluate(setup)
    on_train = evaluate(setup, split="train", sampled=False)   # accuracy and loss only
    totals = exchange_bytes(setup.ledger.records)
    per_link = link_rate_bits(setup.graph, final["rate_nats"])
    gate = setup.scenario.gate
    gate_cls = GATES.get(gate.kind)
    estimator = RATE_DESCRIPTIONS[gate.rate] if gate.kind == "gaussian" else getattr(gate_cls, "estimator", "n/a")
    by_estimator = {k[len("rate_bits_"):]: v for k, v in
                    estimator_rate_bits(setup.graph, final["rate_estimates_nats"]).items()}
    latent = {v: setup.scenario.model.latent_dim for v in final["rate_estimates_nats"]}
    return RunResult(
        scenario=setup.scenario, seed=setup.seed, method=label, network=setup.network, graph=setup.graph,
        accuracy=final["accuracy"], test_loss=final["loss"], exchange_bytes=totals["total"],
        exchange_bytes_forward=totals["forward"], exchange_bytes_backward=totals["backward"],
        sim_time_s=float(setup.engine.sim_time_s), wall_time_s=wall_s,
        rate_bits=sum(per_link.values()) if per_link else None, rate_bits_per_link=per_link,
        rate_estimator=estimator, history=history,
        transfers=setup.ledger.records, accuracy_sampled=final["accuracy_sampled"],
        rate_bits_by_estimator=by_estimator,
        rate_prior_nbytes=prior_nbytes(latent, setup.graph.edges) if latent else None,
        energy=_energy(setup, len(history)), train_accuracy=on_train["accuracy"], train_loss=on_train["loss"],
        faults=fault_report(setup),
        **dict(zip(("inference_bytes_per_sample", "inference_latency_s"), inl_inference_cost(
            setup.network, setup.graph, setup.modules, setup.engine.forward_codec, setup.dataset.test_views))),
    )


def run_routed(sc: Scenario, seed: int, label: str, t0: float) -> RunResult:
    """A paradigm other than INL (:data:`inl_sim.study.paradigms.RUNNERS`), as a :class:`RunResult`."""
    run_ = prepare_routed(sc, seed)
    try:
        out = RUNNERS[sc.paradigm](run_, t0)
    except DivergedError as exc:
        log.info("%s %s seed %d diverged: %s", sc.name, label, seed, exc)
        out = Outcome(list(exc.history), math.nan, math.nan, None, None)
        status = {"status": "diverged", "diverged": {"epoch": exc.epoch, "step": exc.step,
                                                      "node": exc.node, "reason": str(exc)}}
    else:
        status = {}
    totals = exchange_bytes(run_.ledger.records)
    energy = run_energy(run_.ledger.records, run_.flops, sc.energy, nodes=list(run_.network.graph),
                        sim_time_s=run_.sim_time_s)
    return RunResult(
        scenario=sc, seed=seed, method=label, network=run_.network, graph=run_.graph, accuracy=out.accuracy,
        test_loss=out.test_loss, exchange_bytes=totals["total"], exchange_bytes_forward=totals["forward"],
        exchange_bytes_backward=totals["backward"], exchange_bytes_parameters=totals["parameters"],
        exchange_bytes_raw_data=totals["raw_data"], sim_time_s=run_.sim_time_s,
        wall_time_s=time.perf_counter() - t0, rate_bits=None, rate_bits_per_link={}, rate_estimator="n/a",
        history=out.history, transfers=run_.ledger.records, energy=energy,
        inference_bytes_per_sample=out.inference_bytes, inference_latency_s=out.inference_latency_s,
        extra=out.extra, train_accuracy=out.train_accuracy, train_loss=out.train_loss, **status)


def _diverged(setup: RunSetup, label: str, exc: DivergedError, wall_s: float) -> RunResult:
    """A diverged run: its bytes and history until it stopped, NaN accuracy and loss."""
    totals = exchange_bytes(setup.ledger.records)
    node = exc.node if exc.node is None or isinstance(exc.node, (int, str)) else str(exc.node)
    return RunResult(
        scenario=setup.scenario, seed=setup.seed, method=label, network=setup.network, graph=setup.graph,
        accuracy=math.nan, test_loss=math.nan, exchange_bytes=totals["total"],
        exchange_bytes_forward=totals["forward"], exchange_bytes_backward=totals["backward"],
        sim_time_s=float(setup.engine.sim_time_s), wall_time_s=wall_s, rate_bits=None, rate_bits_per_link={},
        rate_estimator="n/a", history=list(exc.history), transfers=setup.ledger.records,
        status="diverged", diverged={"epoch": exc.epoch, "step": exc.step, "node": node, "reason": str(exc)},
    )


def fault_report(setup: RunSetup) -> dict | None:
    """Fault totals of a run: bytes sent (every attempt) and delivered, lost attempts and mean
    attempts per delivered message from the records; drops and repairs from the recorder; the
    timeline of fails, recoveries and repairs."""
    rec = setup.faults
    if rec is None:
        return None
    cols = setup.ledger.columns()
    ok = cols["delivered"]
    nbytes = cols["nbytes"].astype("int64")
    timeline = rec.schedule.timeline(rec.now_s) + rec.repairs
    return {"faults_policy": setup.scenario.faults.policy, "faults_bytes_sent": int(nbytes.sum()),
            "faults_bytes_delivered": int(nbytes[ok].sum()), "faults_lost_attempts": int((~ok).sum()),
            "faults_mean_attempts": len(ok) / max(1, int(ok.sum())),
            **{f"faults_{k}": v for k, v in rec.totals.items() if k != "messages"},
            "faults_repairs": len(rec.repairs),
            "timeline": sorted(timeline, key=lambda r: r["time_s"])}


def _energy(setup: RunSetup, epochs: int) -> Energy:
    """Radio energy from the records, compute from each live node's FLOPs over every epoch."""
    per_sample = {v: setup.engine.nodes[v].flops_per_sample for v in setup.graph.order}
    flops = training_flops(per_sample, setup.dataset.n_train * epochs)
    if setup.faults is not None:   # a repaired run changed graphs: count what each node actually ran
        flops = setup.faults.flops_by_node()
    return run_energy(setup.ledger.records, flops, setup.scenario.energy, nodes=list(setup.network.graph),
                      sim_time_s=float(setup.engine.sim_time_s))
