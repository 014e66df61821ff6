"""Preparing one run: scenario + seed -> network, training graph, data, modules, engine.

:func:`prepare` builds everything a run is made of, once, before training; the epoch
loop (:mod:`inl_sim.study.training`) and the run itself (:mod:`inl_sim.study.experiment`)
only consume the :class:`RunSetup`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Hashable

import simpy
import torch

from inl_sim.errors import ScenarioError
from inl_sim.learning.coding import make_codec
from inl_sim.learning.data import Dataset, make_dataset
from inl_sim.learning.modules import NodeModule, build_modules, forward_flops
from inl_sim.network import Network, build_network
from inl_sim.network.faults import FaultSchedule
from inl_sim.network.routing import TrainingGraph, build_training_graph
from inl_sim.scenario import Scenario
from inl_sim.sim.accounting import Ledger
from inl_sim.sim.engine import Engine, NodeRuntime
from inl_sim.sim.faults import FaultRecorder
from inl_sim.sim.links import Channel
from inl_sim.sim.plane import FastEngine
from inl_sim.sim.timing import NetworkPlane
from inl_sim.sim.traffic import TrafficRecorder
from inl_sim.study.show import nominal_bits_per_value

__all__ = ["RunSetup", "prepare", "check_seed"]

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
    engine: Engine | FastEngine
    ledger: Ledger
    #: the fault recorder (network plane with faults) when the scenario has a faults section
    faults: FaultRecorder | None = None
    #: the test-split evaluation after the last epoch :func:`~inl_sim.study.training.train`
    #: ran (the run's final numbers, not computed twice); None before training
    last_evaluation: dict | None = None


def prepare(scenario: Scenario, seed: int, *, apply_updates: bool = True) -> RunSetup:
    """Build network, training graph, data, modules, links and engine for one seed.

    ``simulation.engine`` picks the engine: ``fast`` (the learning plane, timed by the
    network plane) or ``reference`` (the per-node SimPy engine).  ``apply_updates=False``
    computes gradients without stepping the optimisers (tests compare them).
    """
    sc = scenario
    seed = check_seed(seed)
    network = build_network(sc.topology, seed=seed)
    payload_bits = sc.model.latent_dim * nominal_bits_per_value(sc.message.encoding, sc.message.bits)
    graph = build_training_graph(network, sc.routing.mode, cost=sc.routing.cost,
                                 payload_bits=payload_bits, dense_ties=sc.routing.dense_ties, seed=seed)
    _check_node_beta(sc, graph)
    dataset = make_dataset(sc.data, network.sensors, seed=seed)
    modules = build_modules(graph, dataset.view_dims, dataset.n_classes, sc.model, sc.gate, seed=seed)
    fast = sc.simulation.engine == "fast"
    _check_device(sc)
    runtimes = {v: _runtime(sc, network, dataset, v, modules[v], seed, i, optimiser=not fast)
                for i, v in enumerate(graph.order)}
    forward_codec = make_codec(sc.message.encoding, step=sc.message.step, bits=sc.message.bits, seed=seed)
    backward_codec = make_codec(sc.message.grad_encoding, step=sc.message.grad_step, bits=sc.message.bits,
                                field="message.grad_encoding")
    ledger = Ledger(nodes=tuple(graph.order))
    faults = None
    if fast:
        plane = _network_plane(network, graph, modules)
        recorder: Any = TrafficRecorder(ledger, graph.order, plane)
        if sc.faults.active:
            ledger = Ledger(nodes=plane.nodes)   # the training graph first, then every other node (repairs)
            faults = recorder = _fault_recorder(sc, seed, network, ledger, plane, dataset.n_train)
        engine: Engine | FastEngine = FastEngine(
            graph, runtimes, dataset.train_labels, forward_codec, backward_codec, recorder,
            optimizer=sc.training.optimizer, lr=sc.training.lr, weight_decay=sc.training.weight_decay,
            device=sc.simulation.device, apply_updates=apply_updates)
    else:
        env = simpy.Environment()
        engine = Engine(graph, runtimes, dataset.train_labels, _channels(env, network, graph), forward_codec,
                        backward_codec, ledger, env=env, apply_updates=apply_updates)
    return RunSetup(sc, seed, network, graph, dataset, modules, engine, ledger, faults)


def _fault_recorder(sc: Scenario, seed: int, network: Network, ledger: Ledger, plane: NetworkPlane,
                    n_train: int) -> FaultRecorder:
    """The network plane with the scenario's faults: one schedule per run, seeded by the run seed."""
    steps = math.ceil(n_train / sc.training.batch_size)
    schedule = FaultSchedule(sc.faults, network, seed=seed, steps_per_epoch=steps)
    bits = nominal_bits_per_value(sc.message.encoding, sc.message.bits)
    return FaultRecorder(ledger, plane, schedule, seed=seed, width=sc.model.latent_dim, bytes_per_value=bits / 8)


def _check_node_beta(sc: Scenario, graph: TrainingGraph) -> None:
    """Per-node beta may only name nodes that transmit (the fusion node has no gate)."""
    senders = {str(v) for v in graph.order if v != graph.fusion}
    for key in sc.gate.node_beta:
        if str(key) not in senders:
            raise ScenarioError(f"gate.node_beta.{key}: {key!r} is not a transmitting node of this training graph; "
                                f"use one of {sorted(senders)}")


def _check_device(sc: Scenario) -> None:
    if sc.simulation.device == "cuda":
        if sc.simulation.engine != "fast":
            raise ScenarioError("simulation.device: 'cuda' needs simulation.engine: fast (the reference engine "
                                "runs on the cpu); set simulation.engine: fast or simulation.device: cpu")
        if not torch.cuda.is_available():
            raise ScenarioError("simulation.device: 'cuda' is not available here (torch.cuda.is_available() is "
                                "False); use simulation.device: cpu or a CUDA build of torch on a GPU machine")


def _network_plane(network: Network, graph: TrainingGraph, modules: dict) -> NetworkPlane:
    """The network plane that times the fast engine's transfers (the reference engine's semantics)."""
    return NetworkPlane(network, graph, forward_flops(modules))


def _runtime(sc: Scenario, network: Network, data: Dataset, v: NodeId, module: NodeModule,
             seed: int, index: int, *, optimiser: bool = True) -> NodeRuntime:
    opt_cls = torch.optim.Adam if sc.training.optimizer == "adam" else torch.optim.SGD
    params = list(module.parameters())  # a pure relay (one input, no view, no gate) has none
    optimizer = opt_cls(params, lr=sc.training.lr, weight_decay=sc.training.weight_decay) \
        if params and optimiser else None
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
