"""Run, compare and sweep: scenario in, results (and result folders) out.

``run`` wires the pieces of one training run (network -> training graph -> data ->
modules -> links -> engine), trains, evaluates every epoch and returns a
:class:`RunResult` whose numbers all derive from the transfer records and the history.
``compare`` runs several methods (scenario variants) over several seeds; ``sweep`` runs a
grid of dotted overrides.  Both can fan out over worker processes.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Hashable, Iterable, Iterator, Mapping

import simpy
import torch
from torch.nn import functional as F

from inl_sim import __version__
from inl_sim.sim.accounting import Ledger, Transfer
from inl_sim.learning.coding import make_codec
from inl_sim.learning.data import Dataset, batch_indices, make_dataset
from inl_sim.sim.engine import Engine, NodeRuntime
from inl_sim.errors import ScenarioError
from inl_sim.sim.links import Channel
from inl_sim.sim.metrics import NATS_PER_BIT, exchange_bytes
from inl_sim.study.show import nominal_bits_per_value
from inl_sim.learning.modules import NodeModule, build_modules, composed_forward
from inl_sim.network import Network, build_network
from inl_sim.network.routing import TrainingGraph, build_training_graph
from inl_sim.scenario import Scenario, load_scenario
from inl_sim.learning.gating import GATES

__all__ = ["RunSetup", "RunResult", "prepare", "train", "run", "evaluate", "nominal_bits_per_value"]

log = logging.getLogger(__name__)
NodeId = Hashable


def check_seed(seed: object) -> int:
    """Seeds are 32-bit non-negative integers (every RNG of the run derives from one)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 32:
        raise ScenarioError(f"seed: {seed!r} must be an integer in 0..4294967295; use e.g. --seed 0")
    return seed


@dataclass
class RunSetup:
    """Everything one run is made of, before training (also what ``show`` prints)."""

    scenario: Scenario
    seed: int
    network: Network
    graph: TrainingGraph
    dataset: Dataset
    modules: dict[NodeId, NodeModule]
    engine: Engine
    ledger: Ledger


def prepare(scenario: Scenario, seed: int, *, apply_updates: bool = True) -> RunSetup:
    """Build network, training graph, data, modules, links and engine for one seed."""
    sc = scenario
    seed = check_seed(seed)
    network = build_network(sc.topology, seed=seed)
    payload_bits = sc.model.latent_dim * nominal_bits_per_value(sc.message.encoding, sc.message.bits)
    graph = build_training_graph(network, sc.routing.mode, cost=sc.routing.cost,
                                 payload_bits=payload_bits, dense_ties=sc.routing.dense_ties)
    _check_node_beta(sc, graph)
    dataset = make_dataset(sc.data, network.sensors, seed=seed)
    modules = build_modules(graph, dataset.view_dims, dataset.n_classes, sc.model, sc.gate, seed=seed)
    env, ledger = simpy.Environment(), Ledger()
    runtimes = {v: _runtime(sc, network, dataset, v, modules[v], seed, i) for i, v in enumerate(graph.order)}
    channels = _channels(env, network, graph)
    engine = Engine(graph, runtimes, dataset.train_labels, channels,
                    make_codec(sc.message.encoding, step=sc.message.step, bits=sc.message.bits),
                    make_codec(sc.message.grad_encoding, step=sc.message.grad_step, bits=sc.message.bits,
                               field="message.grad_encoding"),
                    ledger, env=env, apply_updates=apply_updates)
    return RunSetup(sc, seed, network, graph, dataset, modules, engine, ledger)


def _check_node_beta(sc: Scenario, graph: TrainingGraph) -> None:
    """Per-node beta may only name nodes that transmit (the fusion node has no gate)."""
    senders = {str(v) for v in graph.order if v != graph.fusion}
    for key in sc.gate.node_beta:
        if str(key) not in senders:
            raise ScenarioError(f"gate.node_beta.{key}: {key!r} is not a transmitting node of this training graph; "
                                f"use one of {sorted(senders)}")


def _runtime(sc: Scenario, network: Network, data: Dataset, v: NodeId, module: NodeModule,
             seed: int, index: int) -> NodeRuntime:
    opt_cls = torch.optim.Adam if sc.training.optimizer == "adam" else torch.optim.SGD
    params = list(module.parameters())  # a pure relay (one input, no view, no gate) has none
    optimizer = opt_cls(params, lr=sc.training.lr, weight_decay=sc.training.weight_decay) if params else None
    beta = float(sc.gate.node_beta.get(v, sc.gate.node_beta.get(str(v), sc.gate.beta)))
    return NodeRuntime(module=module, optimizer=optimizer,
                       generator=torch.Generator().manual_seed(seed * 7919 + index + 1),
                       view=data.train_views.get(v), flops_per_sample=module.flops_per_sample(),
                       flops_per_s=float(network.graph.nodes[v]["flops_per_s"]), beta=beta)


def _channels(env: simpy.Environment, network: Network, graph: TrainingGraph) -> dict:
    """Two channels (one per direction) for every active link."""
    channels = {}
    for child, parent in graph.edges:
        attrs = network.graph.edges[child, parent]
        for src, dst in ((child, parent), (parent, child)):
            channels[(src, dst)] = Channel(env, src, dst, attrs["capacity_bps"], attrs["latency_s"])
    return channels


def evaluate(setup: RunSetup, *, split: str = "test") -> dict[str, Any]:
    """Accuracy, loss and per-node rate (nats/sample) of the composed model on a split.

    Gates run in evaluation mode (Gaussian: the mean unless ``gate.eval_sample``;
    Gumbel: the arg-max codeword) with fixed generators, so evaluation never perturbs
    the training RNG streams.  Messages pass the forward codec, as in training.
    """
    data = setup.dataset
    views = data.test_views if split == "test" else data.train_views
    labels = data.test_labels if split == "test" else data.train_labels
    codec = setup.engine.forward_codec
    generators = {v: torch.Generator().manual_seed(10_007 + i) for i, v in enumerate(setup.graph.order)}
    for m in setup.modules.values():
        m.eval()
    try:
        with torch.no_grad():
            logits, rates = composed_forward(setup.graph, setup.modules, views, generators,
                                             wire=lambda t: codec.encode(t).tensor)
    finally:
        for m in setup.modules.values():
            m.train()
    return {"accuracy": float((logits.argmax(-1) == labels).float().mean()),
            "loss": float(F.cross_entropy(logits, labels)),
            "rate_nats": {v: float(r) for v, r in rates.items()}}


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

    @property
    def active_edges(self) -> tuple[tuple[NodeId, NodeId], ...]:
        return self.graph.edges

    @property
    def n_active_edges(self) -> int:
        return len(self.graph.edges)

    @property
    def sim_time_per_epoch_s(self) -> float:
        return self.sim_time_s / max(1, len(self.history))

    def summary(self) -> dict[str, Any]:
        """The flat numbers written to ``summary.json``."""
        return {
            "method": self.method, "mode": self.graph.mode, "seed": self.seed,
            "scenario": self.scenario.name, "accuracy": self.accuracy, "test_loss": self.test_loss,
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


def train(setup: RunSetup, *, label: str = "", progress: bool | None = False,
          t0: float | None = None) -> list[dict]:
    """The epoch loop: shuffle, run the SimPy engine, evaluate, append one history row.

    Public so that studies needing the trained modules (e.g. ``rate-curve``) can call
    ``prepare`` then ``train`` and keep the :class:`RunSetup`.
    """
    sc = setup.scenario
    t0 = time.perf_counter() if t0 is None else t0
    shuffle = torch.Generator().manual_seed(setup.seed * 104_729 + 3)
    n = setup.dataset.n_train
    history, seen = [], 0
    for epoch in _epochs(sc.training.epochs, f"{sc.name} {label} seed {setup.seed}", progress):
        stats = setup.engine.run_epoch(epoch, list(batch_indices(n, sc.training.batch_size, shuffle)))
        ev = evaluate(setup)
        epoch_bytes = exchange_bytes(setup.ledger.records[seen:])
        seen = len(setup.ledger.records)
        rate_bits = _link_rate_bits(setup.graph, ev["rate_nats"])
        history.append({
            "epoch": epoch, "train_loss": stats.loss_sum / max(1, stats.samples),
            "train_accuracy": stats.correct / max(1, stats.samples),
            "test_accuracy": ev["accuracy"], "test_loss": ev["loss"],
            "rate_bits": sum(rate_bits.values()) if rate_bits else None,
            "train_rate_bits": _train_rate_bits(setup.graph, stats),
            "exchange_bytes": epoch_bytes["total"], "exchange_bytes_forward": epoch_bytes["forward"],
            "exchange_bytes_backward": epoch_bytes["backward"], "sim_time_s": setup.engine.env.now,
            "wall_time_s": time.perf_counter() - t0,
        })
        log.info("%s %s seed %d epoch %d: test accuracy %.4f", sc.name, label, setup.seed, epoch, ev["accuracy"])
    return history


def _epochs(n: int, desc: str, progress: bool | None) -> Iterable[int]:
    from tqdm.auto import tqdm
    disable = None if progress is None else not progress
    return tqdm(range(n), desc=desc, unit="epoch", disable=disable, leave=False)


def _link_rate_bits(graph: TrainingGraph, rate_nats: Mapping[NodeId, float]) -> dict:
    """Per active link (child, parent): the child's gate rate, in bits per sample."""
    return {(c, p): rate_nats[c] / NATS_PER_BIT for c, p in graph.edges if c in rate_nats}


def _train_rate_bits(graph: TrainingGraph, stats: Any) -> float | None:
    if not stats.rate_nats_sum or not stats.steps:
        return None
    per_node = {v: s / stats.steps for v, s in stats.rate_nats_sum.items()}
    return sum(_link_rate_bits(graph, per_node).values())


def _result(setup: RunSetup, label: str, history: list[dict], wall_s: float) -> RunResult:
    final = evaluate(setup)
    totals = exchange_bytes(setup.ledger.records)
    per_link = _link_rate_bits(setup.graph, final["rate_nats"])
    gate_cls = GATES.get(setup.scenario.gate.kind)
    return RunResult(
        scenario=setup.scenario, seed=setup.seed, method=label, network=setup.network, graph=setup.graph,
        accuracy=final["accuracy"], test_loss=final["loss"], exchange_bytes=totals["total"],
        exchange_bytes_forward=totals["forward"], exchange_bytes_backward=totals["backward"],
        sim_time_s=float(setup.engine.env.now), wall_time_s=wall_s,
        rate_bits=sum(per_link.values()) if per_link else None, rate_bits_per_link=per_link,
        rate_estimator=getattr(gate_cls, "estimator", "n/a"), history=history,
        transfers=list(setup.ledger.records),
    )
