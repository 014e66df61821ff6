"""What a routed paradigm's run is made of, and the epoch loop they share.

:func:`prepare_routed` builds the network, the routes (the routing cost's shortest-path
tree, the same Dijkstra as D-INL), the data, a network plane and a ledger; the
paradigm runners of :mod:`inl_sim.study.paradigms` add their model and one function per
epoch (or round).  :func:`routed_loop` trains, evaluates and appends one history row per
epoch with its bytes per direction, cumulative bytes and simulated time, all from the
ledger; :func:`inference_cost` times one test sample on an idle copy of the network.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Mapping

import numpy as np
import torch

from inl_sim.errors import DivergedError, ScenarioError
from inl_sim.learning.data import Dataset, make_dataset
from inl_sim.learning.dither import dither_generator
from inl_sim.learning.modules import forward_trace
from inl_sim.learning.sampled import EVAL_DITHER_SEED
from inl_sim.network import Network, build_network
from inl_sim.network.routes import sensor_routes
from inl_sim.network.routing import TrainingGraph, build_training_graph
from inl_sim.scenario import Scenario
from inl_sim.sim.accounting import Ledger
from inl_sim.sim.metrics import exchange_bytes
from inl_sim.sim.routed import RoutedTraffic, tree_forward_programs
from inl_sim.sim.timing import NetworkPlane
from inl_sim.study.show import nominal_bits_per_value

__all__ = ["RoutedRun", "prepare_routed", "routed_loop", "inference_cost", "EpochStats", "tensor_message",
           "inl_inference_cost"]

NodeId = Hashable


@dataclass(frozen=True)
class EpochStats:
    """What one epoch (or round) of training saw: loss sum, correct count, samples."""

    loss_sum: float
    correct: int
    samples: int


@dataclass
class RoutedRun:
    """A routed paradigm's run before training: routes as node indices into ``plane.nodes``."""

    scenario: Scenario
    seed: int
    network: Network
    graph: TrainingGraph          # the route tree (mode = the paradigm)
    dataset: Dataset
    plane: NetworkPlane
    ledger: Ledger
    sensors: tuple[NodeId, ...]
    paths: dict[int, list[int]]   # sensor index -> node indices sensor ... fusion
    fusion: int
    flops_per_s: np.ndarray       # per node index
    flops: dict[NodeId, float] = field(default_factory=dict)   # training FLOPs per node (energy)

    @property
    def sim_time_s(self) -> float:
        return float(self.plane.now_s)

    def add_flops(self, index: int, amount: float) -> None:
        v = self.plane.nodes[index]
        self.flops[v] = self.flops.get(v, 0.0) + float(amount)


def prepare_routed(sc: Scenario, seed: int) -> RoutedRun:
    """Network, route tree, data, network plane and ledger for one seed of a routed paradigm."""
    network = build_network(sc.topology, seed=seed)
    payload_bits = sc.model.latent_dim * nominal_bits_per_value(sc.message.encoding, sc.message.bits)
    tree = build_training_graph(network, "spt", cost=sc.routing.cost, payload_bits=payload_bits,
                                dense_ties=sc.routing.dense_ties)
    tree = dataclasses.replace(tree, mode=sc.paradigm)
    k = sc.fl.clients_per_round
    if sc.paradigm == "fl" and k is not None and k > len(network.sensors):
        raise ScenarioError(f"fl.clients_per_round: {k} exceeds the {len(network.sensors)} sensors (clients); "
                            f"use at most {len(network.sensors)} or null for all")
    dataset = make_dataset(sc.data, network.sensors, seed=seed)
    plane = NetworkPlane(network, tree, {v: 0 for v in tree.order})
    index = plane.index
    paths = {index[s]: [index[v] for v in path] for s, path in sensor_routes(tree).items()}
    speed = np.array([float(network.graph.nodes[v]["flops_per_s"]) for v in plane.nodes])
    return RoutedRun(sc, seed, network, tree, dataset, plane, Ledger(nodes=tree.order), tuple(network.sensors),
                     paths, index[tree.fusion], speed)


def tensor_message(t: Any) -> tuple[int, int]:
    """(n_values, nbytes) of a tensor that crosses a link: ``numel * element_size``."""
    return int(t.numel()), int(t.numel() * t.element_size())


def routed_loop(run: RoutedRun, n_epochs: int, epoch_fn: Callable[[int], EpochStats],
                eval_fn: Callable[[], dict], t0: float) -> list[dict]:
    """Train ``n_epochs`` epochs (rounds) and append one history row each, bytes from the ledger.

    ``eval_fn`` returns at least ``accuracy`` and ``loss`` on the test split.  A
    non-finite mean training loss raises :class:`DivergedError` with the history so far.
    """
    history: list[dict] = []
    seen, cumulative = 0, 0
    for epoch in range(n_epochs):
        stats = epoch_fn(epoch)
        records = run.ledger.records
        part, seen = exchange_bytes(records[seen:]), len(records)
        cumulative += part["total"]
        ev = eval_fn()
        history.append({
            "epoch": epoch, "train_loss": stats.loss_sum / max(1, stats.samples),
            "train_accuracy": stats.correct / max(1, stats.samples), "test_accuracy": ev["accuracy"],
            "test_loss": ev["loss"], "rate_bits": None,
            **{k: v for k, v in ev.items() if k not in ("accuracy", "loss")},
            "exchange_bytes": part["total"], **{f"exchange_bytes_{d}": part[d] for d in part if d != "total"},
            "exchange_bytes_cumulative": cumulative, "sim_time_s": run.sim_time_s,
            "wall_time_s": time.perf_counter() - t0,
        })
        if not math.isfinite(history[-1]["train_loss"]):
            err = DivergedError(epoch, -1, run.graph.fusion, reason=(
                f"training diverged in epoch {epoch}: mean train loss is {history[-1]['train_loss']}; "
                f"lower training.lr (now {run.scenario.training.lr})"))
            err.history = history
            raise err
    return history


def inference_cost(run: RoutedRun, build: Callable[[RoutedTraffic], None]) -> tuple[int, float]:
    """Bytes and simulated latency (s) of classifying one test sample on an idle network.

    ``build`` adds the inference programs to a fresh :class:`RoutedTraffic`; they are
    timed on a fresh network plane (empty channels, clock at 0), apart from training.
    """
    return _idle_cost(run.network, run.graph, build)


def _idle_cost(network: Network, graph: TrainingGraph, build: Callable[[RoutedTraffic], None]) -> tuple[int, float]:
    traffic = RoutedTraffic()
    build(traffic)
    plane = NetworkPlane(network, graph, {v: 0 for v in graph.order})
    traffic.time(plane)
    return int(sum(traffic.columns["nbytes"])), float(plane.now_s)


def inl_inference_cost(network: Network, graph: TrainingGraph, modules: Mapping, codec: Any,
                       test_views: Mapping) -> tuple[int, float]:
    """INL's cost of one test sample: one forward message per active link, each node computing
    once its children's messages are in; message sizes from the codec on the real sample."""
    with torch.no_grad():
        for m in modules.values():
            m.eval()
        try:
            # two samples: batch rate estimators (aggregate posterior) need a pair; sizes are of the first
            trace = forward_trace(graph, modules, {v: x[:2] for v, x in test_views.items()})
        finally:
            for m in modules.values():
                m.train()
        sizes = {}
        for v, msg in trace.messages.items():
            enc = codec.encode(msg[:1], generator=dither_generator(EVAL_DITHER_SEED, 0))
            sizes[v] = (int(enc.n_values), int(enc.nbytes))
    order = list(graph.order)
    pos = {v: i for i, v in enumerate(order)}
    speed = [float(network.graph.nodes[v]["flops_per_s"]) for v in order]
    compute_s = [modules[v].flops_per_sample() / speed[i] for i, v in enumerate(order)]
    edges = [(pos[c], pos[p]) for c, p in graph.edges]
    messages = {pos[v]: sizes[v] for v in sizes}
    return _idle_cost(network, graph, lambda t: tree_forward_programs(t, edges, len(order), messages, compute_s))
