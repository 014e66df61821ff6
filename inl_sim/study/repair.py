"""``faults.policy: repair``: rebuild the training graph on the surviving network between epochs.

At every epoch boundary the run looks at the network as the fault schedule has it at
that moment (the next step's start).  If the links and nodes that are down differ from
those the current training graph was built around, the graph is rebuilt on the
surviving network with the scenario's own routing (Dijkstra again: for D-INL the
shortest-path tree of what is left; for dense INL every surviving link), the modules are
rewired by the rule of :mod:`inl_sim.learning.rewire`, and training goes on on a new
learning plane and network plane, with the same clock, ledger and fault schedule.  Inside
the epoch of a failure, inputs over a down link are dropped as under ``deadline``
(rerouting is not instantaneous).  A recovered network is "repaired" back the same way.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from inl_sim.learning.modules import forward_flops
from inl_sim.learning.rewire import rewire_modules
from inl_sim.network.faults import surviving_network
from inl_sim.network.routing import build_training_graph
from inl_sim.sim.plane import FastEngine
from inl_sim.sim.timing import NetworkPlane
from inl_sim.study.setup import RunSetup, _runtime
from inl_sim.study.show import nominal_bits_per_value

__all__ = ["repair_if_needed"]

log = logging.getLogger(__name__)
_REPAIR_SEED = 0x6E9A1


def repair_if_needed(setup: RunSetup, epoch: int) -> dict[str, Any] | None:
    """Rebuild ``setup``'s training graph if the surviving network changed; return what changed."""
    rec, sc = setup.faults, setup.scenario
    if rec is None or sc.faults.policy != "repair":
        return None
    t = rec.now_s
    rec.schedule.begin_step(rec.global_step, t)
    links, nodes = rec.schedule.down_now(t)
    state = (frozenset(links), frozenset(nodes))
    if state == getattr(rec, "repaired_for", (frozenset(), frozenset())):
        return None
    rec.repaired_for = state
    survivor = surviving_network(setup.network, links, nodes)
    payload_bits = sc.model.latent_dim * nominal_bits_per_value(sc.message.encoding, sc.message.bits)
    graph = build_training_graph(survivor, sc.routing.mode, cost=sc.routing.cost, payload_bits=payload_bits,
                                 dense_ties=sc.routing.dense_ties)
    if graph.edges == setup.graph.edges:
        return None
    before = setup.graph
    modules = rewire_modules(before, graph, setup.modules, setup.dataset.view_dims, setup.dataset.n_classes,
                             sc.model, sc.gate, seed=setup.seed * 7_919 + _REPAIR_SEED + rec.global_step)
    _rebuild(setup, survivor, graph, modules)
    row = {"time_s": t, "epoch": epoch, "step": rec.global_step, "event": "repair",
           "target": f"{len(before.edges)} -> {len(graph.edges)} training links",
           "removed": [list(e) for e in before.edges if e not in graph.edges],
           "added": [list(e) for e in graph.edges if e not in before.edges]}
    rec.repairs.append(row)
    log.info("repair at epoch %d: %s", epoch, row["target"])
    return row


def _rebuild(setup: RunSetup, survivor: Any, graph: Any, modules: dict) -> None:
    """A new learning plane and network plane for ``graph``; clock, ledger and faults carried over."""
    sc, old = setup.scenario, setup.engine
    runtimes = {}
    for i, v in enumerate(graph.order):
        if v in old.nodes:
            runtimes[v] = dataclasses.replace(old.nodes[v], module=modules[v],
                                              flops_per_sample=modules[v].flops_per_sample())
        else:
            runtimes[v] = _runtime(sc, setup.network, setup.dataset, v, modules[v], setup.seed, i, optimiser=False)
    plane = NetworkPlane(survivor, graph, forward_flops({v: modules[v] for v in graph.order}))
    plane.now_s = setup.faults.now_s
    plane.free_at_s[:] = plane.now_s
    setup.faults.rebind(plane)
    setup.engine = FastEngine(graph, runtimes, setup.dataset.train_labels, old.forward_codec, old.backward_codec,
                              setup.faults, optimizer=sc.training.optimizer, lr=sc.training.lr,
                              weight_decay=sc.training.weight_decay, device=sc.simulation.device)
    setup.graph, setup.modules = graph, modules
