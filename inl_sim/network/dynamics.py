"""Network dynamics that are not failures: time-varying capacity and straggling nodes.

Both are compiled by :class:`~inl_sim.network.faults.FaultSchedule` and stepped once per
training step (``begin_step``), in order; each draws from its own seeded stream, so the
same seed gives the same capacities and speeds bit for bit.

* :class:`CapacityModel`: a link carries ``factor * capacity_bps``.  ``schedule``: changes
  anchored at a step or a time, the last one passed wins per link; ``gilbert_elliott``:
  each link is a two-state Markov chain (good -> bad with ``p_good_to_bad`` per step,
  bad -> good with ``p_bad_to_good``), the bad state carrying ``bad_factor``.  The
  stationary share of bad steps is p_gb / (p_gb + p_bg).
* :class:`StragglerModel`: a node's compute takes ``factor`` times its nominal time:
  ``fixed`` per node, ``lognormal`` exp(N(0, sigma^2)) per node and step, or a ``trace``.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable

import numpy as np

from inl_sim.scenario.faults import CapacitySpec, StragglerSpec

__all__ = ["CapacityModel", "StragglerModel", "CAPACITY_MODELS", "STRAGGLER_MODELS", "capacity_model",
           "straggler_model"]

NodeId = Hashable
_CAPACITY_STREAM, _STRAGGLER_STREAM = 0xCA9, 0x5106


class CapacityModel:
    """No variation: every link carries its nominal capacity (``kind: constant``).

    The base of the capacity models: ``begin_step`` once per training step, in order, then
    ``factor(link, t)`` for any link at a time ``t`` of that step.
    """

    def __init__(self, spec: CapacitySpec, links: list, seed: int, resolve_link: Callable[[Any, str], Any],
                 steps_per_epoch: int = 1) -> None:
        self.spec, self.step = spec, -1
        self.steps_per_epoch = max(1, steps_per_epoch)

    def begin_step(self, step: int, t_s: float) -> None:
        self.step = step

    def factor(self, link: Any, t: float) -> float:
        return 1.0


class ScheduledCapacity(CapacityModel):
    """Changes anchored at a step or a time; the last one passed wins per link (``kind: schedule``)."""

    def __init__(self, spec: CapacitySpec, links: list, seed: int, resolve_link: Callable[[Any, str], Any],
                 steps_per_epoch: int = 1) -> None:
        super().__init__(spec, links, seed, resolve_link, steps_per_epoch)
        self.changes = []
        for i, ch in enumerate(spec.schedule):
            link = None if ch.link is None else resolve_link(ch.link, f"faults.capacity.schedule[{i}].link")
            self.changes.append((ch.at_epoch, ch.at_step, ch.at_time_s, ch.factor, link))

    def _passed(self, change: tuple, t: float) -> bool:
        at_epoch, step, at_time, _, _ = change
        if at_time is not None:
            return t >= at_time
        g = step if at_epoch is None else at_epoch * self.steps_per_epoch + (step or 0)
        return self.step >= g

    def factor(self, link: Any, t: float) -> float:
        out = 1.0
        for change in self.changes:
            if (change[4] is None or change[4] == link) and self._passed(change, t):
                out = change[3]
        return out


class GilbertElliottCapacity(CapacityModel):
    """A two-state Markov chain per link, stepped once per training step (``kind: gilbert_elliott``)."""

    def __init__(self, spec: CapacitySpec, links: list, seed: int, resolve_link: Callable[[Any, str], Any],
                 steps_per_epoch: int = 1) -> None:
        super().__init__(spec, links, seed, resolve_link, steps_per_epoch)
        self.rng = np.random.default_rng([seed, _CAPACITY_STREAM])
        chained = [resolve_link(k, "faults.capacity.links") for k in spec.links] if spec.links else list(links)
        self.chained = {k: i for i, k in enumerate(chained)}
        self.bad = np.zeros(len(chained), dtype=bool)

    def begin_step(self, step: int, t_s: float) -> None:
        self.step = step
        u = self.rng.random(len(self.bad))                         # one draw per chained link, in order
        flip = np.where(self.bad, u < self.spec.p_bad_to_good, u < self.spec.p_good_to_bad)
        self.bad ^= flip

    def factor(self, link: Any, t: float) -> float:
        i = self.chained.get(link)
        return self.spec.bad_factor if i is not None and self.bad[i] else 1.0


class StragglerModel:
    """No stragglers: every node computes at its nominal speed (``kind: none``).

    The base of the straggler models: ``begin_step`` once per training step, in order,
    then ``factor(node)`` for the current step.
    """

    def __init__(self, spec: StragglerSpec, nodes: list, seed: int, resolve_node: Callable[[Any, str], Any]) -> None:
        self.spec, self.step = spec, -1

    def begin_step(self, step: int) -> None:
        self.step = step

    def factor(self, v: NodeId) -> float:
        return 1.0


class FixedStragglers(StragglerModel):
    """``factors: {node: m}``, the same every step (``kind: fixed``)."""

    def __init__(self, spec: StragglerSpec, nodes: list, seed: int, resolve_node: Callable[[Any, str], Any]) -> None:
        super().__init__(spec, nodes, seed, resolve_node)
        self.fixed = {resolve_node(k, "faults.stragglers.factors"): v for k, v in spec.factors.items()}

    def factor(self, v: NodeId) -> float:
        return float(self.fixed.get(v, 1.0))


class LognormalStragglers(StragglerModel):
    """exp(N(0, sigma^2)) per node and step, median 1 (``kind: lognormal``; ``nodes``: empty = all)."""

    def __init__(self, spec: StragglerSpec, nodes: list, seed: int, resolve_node: Callable[[Any, str], Any]) -> None:
        super().__init__(spec, nodes, seed, resolve_node)
        self.rng = np.random.default_rng([seed, _STRAGGLER_STREAM])
        drawn = [resolve_node(v, "faults.stragglers.nodes") for v in spec.nodes] if spec.nodes else list(nodes)
        self.drawn = {v: i for i, v in enumerate(drawn)}
        self.current = np.ones(len(drawn))

    def begin_step(self, step: int) -> None:
        self.step = step
        self.current = np.exp(self.spec.sigma * self.rng.standard_normal(len(self.drawn)))

    def factor(self, v: NodeId) -> float:
        i = self.drawn.get(v)
        return float(self.current[i]) if i is not None else 1.0


class TraceStragglers(StragglerModel):
    """``trace: {node: [m0, m1, ...]}``, one value per step, repeated cyclically (``kind: trace``)."""

    def __init__(self, spec: StragglerSpec, nodes: list, seed: int, resolve_node: Callable[[Any, str], Any]) -> None:
        super().__init__(spec, nodes, seed, resolve_node)
        self.trace = {resolve_node(k, "faults.stragglers.trace"): v for k, v in spec.trace.items()}

    def factor(self, v: NodeId) -> float:
        values = self.trace.get(v)
        return float(values[self.step % len(values)]) if values else 1.0


#: kind -> model class: a new capacity or straggler model is one class + one entry here
#: (and its name in ``inl_sim.scenario.faults``' CAPACITY_KINDS / STRAGGLER_KINDS)
CAPACITY_MODELS: dict[str, type[CapacityModel]] = {
    "constant": CapacityModel, "schedule": ScheduledCapacity, "gilbert_elliott": GilbertElliottCapacity}
STRAGGLER_MODELS: dict[str, type[StragglerModel]] = {
    "none": StragglerModel, "fixed": FixedStragglers, "lognormal": LognormalStragglers, "trace": TraceStragglers}


def capacity_model(spec: CapacitySpec, links: list, seed: int, resolve_link: Callable[[Any, str], Any],
                   steps_per_epoch: int = 1) -> CapacityModel:
    """The capacity model of ``spec.kind``, from :data:`CAPACITY_MODELS`."""
    return CAPACITY_MODELS[spec.kind](spec, links, seed, resolve_link, steps_per_epoch)


def straggler_model(spec: StragglerSpec, nodes: list, seed: int,
                    resolve_node: Callable[[Any, str], Any]) -> StragglerModel:
    """The straggler model of ``spec.kind``, from :data:`STRAGGLER_MODELS`."""
    return STRAGGLER_MODELS[spec.kind](spec, nodes, seed, resolve_node)
