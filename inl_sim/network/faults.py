"""Fault schedules: which links and nodes are down, and how lossy each link is, over a run.

A fault schedule is network state, so it lives here; the network plane asks it questions
(:mod:`inl_sim.sim.faults`) and never the other way round.  :class:`FaultSchedule`
compiles the scenario's ``faults:`` section against one :class:`~inl_sim.network.Network`
and one run seed:

* **scheduled events** anchored at a training step (``at_epoch``/``at_step``) take effect
  when that step begins; those anchored at a simulated time (``at_time_s``) at the first
  transmission at or after it;
* **random failures**: per link (and node, if asked) alternating exponential up
  (mean ``mtbf_s``) and down (mean ``mttr_s``) times, each element from its own seeded
  stream, so the same seed gives the same outages bit for bit, whatever is asked first;
* **loss**: per-attempt loss probability per link (``loss_prob``, ``link_loss``).

Each source is its own timeline: a link is down while any of them says so (its own
events, an endpoint's node events, its random process).  Time-varying capacity and
stragglers are in :mod:`inl_sim.network.dynamics`; the registry :data:`FAULT_MODELS` lists
every model with the builder that compiles it.
"""

from __future__ import annotations

import math
from typing import Any, Hashable, Iterable

import networkx as nx
import numpy as np

from inl_sim.errors import ScenarioError
from inl_sim.network.build import Network, _match
from inl_sim.network.dynamics import CAPACITY_MODELS, STRAGGLER_MODELS, capacity_model, straggler_model
from inl_sim.scenario.faults import FaultEvent, FaultsSpec

__all__ = ["FaultSchedule", "FAULT_MODELS", "Link", "surviving_network", "link_key"]

NodeId = Hashable
Link = frozenset
_RANDOM_STREAM = 0xFA17


def link_key(u: NodeId, v: NodeId) -> Link:
    """The undirected link {u, v} (both directions share its state)."""
    return frozenset((u, v))


class _Timeline:
    """Down intervals of one element from time-anchored events (sorted by time, stable)."""

    __slots__ = ("changes",)

    def __init__(self) -> None:
        self.changes: list[tuple[float, bool]] = []

    def down(self, t: float) -> bool:
        state = False
        for at, down in self.changes:
            if at > t:
                break
            state = down
        return state

    def next_up(self, t: float) -> float:
        """Earliest time >= t at which this timeline says up (inf if never)."""
        if not self.down(t):
            return t
        return next((at for at, down in self.changes if at > t and not down), math.inf)


class _RandomOutages:
    """Alternating exponential up/down intervals of one element, generated lazily."""

    __slots__ = ("rng", "mtbf_s", "mttr_s", "bounds")

    def __init__(self, seed: int, index: int, mtbf_s: float, mttr_s: float) -> None:
        self.rng = np.random.default_rng([seed, _RANDOM_STREAM, index])
        self.mtbf_s, self.mttr_s = mtbf_s, mttr_s
        self.bounds: list[float] = []  # fail, recover, fail, recover, ...

    def _extend(self, t: float) -> None:
        while not self.bounds or self.bounds[-1] <= t:
            last = self.bounds[-1] if self.bounds else 0.0
            mean = self.mtbf_s if len(self.bounds) % 2 == 0 else self.mttr_s
            self.bounds.append(last + float(self.rng.exponential(mean)))

    def down(self, t: float) -> bool:
        self._extend(t)
        return int(np.searchsorted(self.bounds, t, side="right")) % 2 == 1

    def next_up(self, t: float) -> float:
        if not self.down(t):
            return t
        return self.bounds[int(np.searchsorted(self.bounds, t, side="right"))]

    def intervals(self, until_s: float) -> list[tuple[float, float]]:
        self._extend(until_s)
        pairs = zip(self.bounds[0::2], self.bounds[1::2])
        return [(a, b) for a, b in pairs if a <= until_s]


class FaultSchedule:
    """The faults of one run on one network (see the module docstring).

    ``steps_per_epoch`` turns ``at_epoch``/``at_step`` anchors into global step numbers.
    Call :meth:`begin_step` once per training step, in order; the other questions are
    about the current step at a time ``t``.
    """

    def __init__(self, spec: FaultsSpec, network: Network, *, seed: int, steps_per_epoch: int) -> None:
        self.spec, self.network, self.seed = spec, network, seed
        self.steps_per_epoch = max(1, steps_per_epoch)
        graph = network.graph
        self.links = [link_key(u, v) for u, v in graph.edges]
        self.loss = {k: spec.loss_prob for k in self.links}
        for i, (u, v, p) in enumerate(spec.link_loss):
            self.loss[self._link((u, v), f"faults.link_loss[{i}]")] = p
        self.step_events: list[tuple[int, FaultEvent, Any]] = []
        self.time: dict[Any, _Timeline] = {}
        for i, event in enumerate(spec.events):
            target = self._target(event, f"faults.events[{i}]")
            if event.on_time:
                self.time.setdefault(target, _Timeline()).changes.append((event.at_time_s, event.action.startswith("fail")))
            else:
                self.step_events.append((self._global_step(event), event, target))
        for tl in self.time.values():
            tl.changes.sort(key=lambda c: c[0])
        self.random: dict[Any, _RandomOutages] = {}
        if spec.random.mtbf_s is not None:
            elements: list[Any] = list(self.links) + (list(graph.nodes) if spec.random.nodes else [])
            for i, el in enumerate(elements):
                self.random[el] = _RandomOutages(seed, i, spec.random.mtbf_s, spec.random.mttr_s)
        self.step_down: set = set()
        self.step = -1
        self.applied: list[dict] = []  # the step-anchored events, with the step they took effect at
        self.capacity = capacity_model(spec.capacity, self.links, seed, self._link, self.steps_per_epoch)
        self.stragglers = straggler_model(spec.stragglers, list(graph.nodes), seed, self._node)

    # ------------------------------------------------------------------ resolution
    def _node(self, value: object, where: str) -> NodeId:
        v = _match(self.network.graph, value)
        if v not in self.network.graph:
            raise ScenarioError(f"{where}: node {value!r} is not in the topology; use one of its node ids")
        return v

    def _link(self, value: Iterable, where: str) -> Link:
        u, v = (self._node(x, where) for x in value)
        if not self.network.graph.has_edge(u, v):
            raise ScenarioError(f"{where}: [{u!r}, {v!r}] is not a link of the topology; name an existing link")
        return link_key(u, v)

    def _target(self, event: FaultEvent, where: str) -> Any:
        where = f"{where}.{event.action}"
        return self._link(event.target, where) if event.action.endswith("link") else self._node(event.target, where)

    def _global_step(self, event: FaultEvent) -> int:
        if event.at_epoch is None:
            return int(event.at_step)
        return event.at_epoch * self.steps_per_epoch + (event.at_step or 0)

    # ------------------------------------------------------------------ state
    def begin_step(self, step: int, t_s: float) -> None:
        """Apply the step-anchored events up to global step ``step`` (starting at ``t_s``).

        Calling it again for the same step changes nothing (no second draw)."""
        if step == self.step:
            return
        for g, event, target in self.step_events:
            if self.step < g <= step:
                (self.step_down.add if event.action.startswith("fail") else self.step_down.discard)(target)
                self.applied.append({"time_s": t_s, "step": step, "event": event.action, "target": _label(target)})
        self.step = step
        self.capacity.begin_step(step, t_s)
        self.stragglers.begin_step(step)

    def _element_down(self, el: Any, t: float) -> bool:
        tl, rnd = self.time.get(el), self.random.get(el)
        return el in self.step_down or (tl is not None and tl.down(t)) or (rnd is not None and rnd.down(t))

    def node_down(self, v: NodeId, t: float) -> bool:
        return self._element_down(v, t)

    def link_down(self, u: NodeId, v: NodeId, t: float) -> bool:
        """Whether the link u-v can carry nothing at time ``t`` (it or an endpoint is down)."""
        return any(self._element_down(el, t) for el in (link_key(u, v), u, v))

    def up_again_at(self, u: NodeId, v: NodeId, t: float) -> float:
        """The earliest time >= t at which link u-v is up; inf if a step-anchored outage holds
        it (steps do not advance while a transfer waits) or nothing ever brings it back."""
        for _ in range(10_000):
            if not self.link_down(u, v, t):
                return t
            ends = []
            for el in (link_key(u, v), u, v):
                if el in self.step_down:
                    return math.inf
                for src in (self.time.get(el), self.random.get(el)):
                    if src is not None:
                        ends.append(src.next_up(t))
            t = max(ends)
            if math.isinf(t):
                return t
        return math.inf

    def loss_prob(self, u: NodeId, v: NodeId) -> float:
        return self.loss[link_key(u, v)]

    def down_now(self, t: float) -> tuple[set, set]:
        """(links, nodes) down at time ``t`` of the current step."""
        nodes = {v for v in self.network.graph.nodes if self._element_down(v, t)}
        links = {k for k in self.links if self._element_down(k, t) or k & nodes}
        return links, nodes

    def timeline(self, until_s: float) -> list[dict]:
        """Every fail/recover that took effect up to ``until_s``, in time order."""
        rows = list(self.applied)
        for el, tl in self.time.items():
            rows += [{"time_s": at, "step": None, "event": ("fail_" if down else "recover_") + _kind(el),
                      "target": _label(el)} for at, down in tl.changes if at <= until_s]
        for el, rnd in self.random.items():
            for a, b in rnd.intervals(until_s):
                rows.append({"time_s": a, "step": None, "event": "fail_" + _kind(el), "target": _label(el)})
                if b <= until_s:
                    rows.append({"time_s": b, "step": None, "event": "recover_" + _kind(el), "target": _label(el)})
        return sorted(rows, key=lambda r: r["time_s"])


def _kind(el: Any) -> str:
    return "link" if isinstance(el, frozenset) else "node"


def _label(el: Any) -> Any:
    return sorted(el, key=str) if isinstance(el, frozenset) else el


def surviving_network(network: Network, down_links: set, down_nodes: set) -> Network:
    """The network without its down links and nodes, cut to the fusion node's component.

    Sensors that cannot reach the fusion node any more are dropped (their views are lost
    until the network heals); a down fusion node leaves nothing to train and is an error.
    """
    if network.fusion in down_nodes:
        raise ScenarioError(f"faults: the fusion node {network.fusion!r} is down; training cannot repair around "
                            "it; schedule its recovery or use policy wait")
    graph = nx.Graph(network.graph)
    graph.remove_nodes_from(down_nodes)
    graph.remove_edges_from(tuple(k) for k in down_links if len(k) == 2)
    alive = nx.node_connected_component(graph, network.fusion)
    graph = nx.freeze(graph.subgraph([v for v in network.graph.nodes if v in alive]).copy())
    sensors = tuple(s for s in network.sensors if s in alive)
    return Network(graph=graph, fusion=network.fusion, sensors=sensors, name=network.name)


#: the fault models a schedule compiles, by scenario key: scheduled events and random
#: outages are timelines of this module; capacity and stragglers are the registries of
#: :mod:`inl_sim.network.dynamics` (a new kind: one class + one entry there)
FAULT_MODELS: dict[str, Any] = {
    "events": _Timeline,
    "random": _RandomOutages,
    "capacity": CAPACITY_MODELS,
    "stragglers": STRAGGLER_MODELS,
}
