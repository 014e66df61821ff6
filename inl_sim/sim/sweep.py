"""The fault-free INL schedule as a sweep over the levels of the training graph.

Without faults every INL step is the same dependency pattern: a node's forward waits
for its children, its backward for its parents, and each directed channel carries one
message per step.  So the times of a step follow from two passes over the *levels* of
the training DAG (level 0: nodes without children; a node's level is one more than its
highest child's), instead of one SimPy event per transfer: on numpy arrays, a handful
of operations per level, where levels are wide; on Python floats, transfer by transfer,
where they are narrow and a numpy call would cost more than the work (:data:`SCALAR_BELOW`).
Every time is computed with the very float operations of the
SimPy executor (:func:`inl_sim.sim.programs.run_programs`): ``ready + compute``,
``max(send, channel free)``, ``start + tx``, ``end + latency`` and a delivery at ``send +
(arrive - send)``; ``tests/test_timing.py`` holds the two equal, bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = ["Levels", "levels_of", "sweep_inl"]


@dataclass(frozen=True)
class Levels:
    """Per level of the training DAG: its nodes, the edges into them, the edges out of them."""

    nodes: tuple[np.ndarray, ...]      # node indices at each level
    edges_in: tuple[np.ndarray, ...]   # edge ids whose parent is at this level
    edges_out: tuple[np.ndarray, ...]  # edge ids whose child is at this level


def levels_of(n_nodes: int, child: np.ndarray, parent: np.ndarray, order: np.ndarray) -> Levels:
    """Levels from edge arrays (child -> parent) and a children-first topological ``order``."""
    level = np.zeros(n_nodes, dtype=np.int64)
    into: list[list[int]] = [[] for _ in range(n_nodes)]
    for c, p in zip(child.tolist(), parent.tolist()):
        into[p].append(c)
    for v in order.tolist():
        if into[v]:
            level[v] = 1 + max(level[c] for c in into[v])
    n_levels = int(level.max()) + 1 if n_nodes else 0
    by_node = np.argsort(level, kind="stable")
    cuts = np.searchsorted(level[by_node], np.arange(n_levels + 1))
    nodes = tuple(by_node[cuts[i]:cuts[i + 1]] for i in range(n_levels))
    edges_in = _group(level[parent], n_levels)
    edges_out = _group(level[child], n_levels)
    return Levels(nodes, edges_in, edges_out)


def _group(key: np.ndarray, n_groups: int) -> tuple[np.ndarray, ...]:
    by_key = np.argsort(key, kind="stable")
    cuts = np.searchsorted(key[by_key], np.arange(n_groups + 1))
    return tuple(by_key[cuts[i]:cuts[i + 1]] for i in range(n_groups))


#: below this many transfers per level and pass (on average) the sweep runs on Python
#: floats: a numpy call costs about as much as a few scalar transfers, so small graphs
#: (the 9-node quickstart: 3.4 per pass, 5x faster) go scalar and large ones vectorised
#: (measured crossover: about 15 per pass, a 300-node tree)
SCALAR_BELOW = 12


def sweep_inl(levels: Levels, child: np.ndarray, parent: np.ndarray, chan_fwd: np.ndarray,
              chan_bwd: np.ndarray, slots: np.ndarray, tx_s: np.ndarray, latency_s: np.ndarray,
              free_at_s: np.ndarray, compute_s: np.ndarray, backward_factor: float,
              now_s: float, *, scalar: bool | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Times of an INL epoch; same inputs and meaning as :func:`~inl_sim.sim.programs.inl_programs`.

    ``slots`` (S, E, 2) maps (step, edge, direction) to transfer ids; ``compute_s`` (S, N)
    is each node's forward time per step; ``free_at_s`` (C,) is updated in place.
    Returns ``(t_send_s, t_start_s, t_arrive_s, end_s)``.  ``scalar`` picks the Python-float
    or the numpy sweep (None: by :data:`SCALAR_BELOW`); both give the same floats.
    """
    if scalar is None:
        passes = 2 * len(levels.nodes) * slots.shape[0]
        scalar = len(tx_s) < SCALAR_BELOW * max(1, passes)
    run = _sweep_scalar if scalar else _sweep_vector
    return run(levels, child, parent, chan_fwd, chan_bwd, slots, tx_s, latency_s, free_at_s, compute_s,
               backward_factor, now_s)


class _Plan(NamedTuple):
    """One level's half of a step (forward or backward): who waits on what, who computes,
    what is sent on which channel in which direction; the same for every step."""

    waiting: np.ndarray    # receivers ...
    waits_on: np.ndarray   # ... and the edges they wait on
    nodes: np.ndarray      # the level's nodes, which then compute
    factor: float          # compute time factor (1 forward, ``backward_factor`` backward)
    edges: np.ndarray      # the edges sent on, by ...
    senders: np.ndarray    # ... these nodes, on ...
    chan: np.ndarray       # ... these channels
    direction: int         # 0 forward, 1 backward (``slots``' last axis)


def _plans(levels: Levels, child: np.ndarray, parent: np.ndarray, chan_fwd: np.ndarray,
           chan_bwd: np.ndarray, backward_factor: float) -> list[_Plan]:
    """The passes of a step in order: forward up the levels, then backward down them."""
    forward = [_Plan(parent[e_in], e_in, nodes, 1.0, e_out, child[e_out], chan_fwd[e_out], 0)
               for nodes, e_in, e_out in zip(levels.nodes, levels.edges_in, levels.edges_out)]
    backward = [_Plan(child[e_out], e_out, nodes, backward_factor, e_in, parent[e_in], chan_bwd[e_in], 1)
                for nodes, e_in, e_out in zip(levels.nodes, levels.edges_in, levels.edges_out)]
    return forward + backward[::-1]


def _sweep_vector(levels: Levels, child: np.ndarray, parent: np.ndarray, chan_fwd: np.ndarray,
                  chan_bwd: np.ndarray, slots: np.ndarray, tx_s: np.ndarray, latency_s: np.ndarray,
                  free_at_s: np.ndarray, compute_s: np.ndarray, backward_factor: float,
                  now_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The sweep on numpy arrays: everything that does not depend on the clock (edges,
    channels, latencies, transmission and compute times of each level's pass at every
    step) is gathered once per epoch, so a step is a few numpy calls per level and pass."""
    n_steps, n_nodes, n_edges = slots.shape[0], compute_s.shape[1], len(child)
    passes = [_Pass(plan, slots, tx_s, latency_s, compute_s)
              for plan in _plans(levels, child, parent, chan_fwd, chan_bwd, backward_factor)]
    clock = np.full(n_nodes, now_s)
    recv = np.empty(n_edges)  # delivery time of this step's message on each edge
    for s in range(n_steps):
        ready = clock.copy()
        for p in passes:
            np.maximum.at(ready, p.plan.waiting, recv[p.plan.waits_on])
            ready[p.plan.nodes] += p.compute[s]
            at = ready[p.plan.senders]
            # one message per channel per pass: the FIFO rule is a vectorised max
            start = np.maximum(at, free_at_s[p.plan.chan])
            end = start + p.tx[s]
            free_at_s[p.plan.chan] = end
            arrive = end + p.latency
            p.send[s], p.start[s], p.arrive[s] = at, start, arrive
            recv[p.plan.edges] = at + (arrive - at)
        clock = ready
    t_send, t_start, t_arrive = (np.full(len(tx_s), np.nan) for _ in range(3))
    for p in passes:
        t_send[p.ids], t_start[p.ids], t_arrive[p.ids] = p.send, p.start, p.arrive
    end_s = float(clock.max()) if n_steps and n_nodes else now_s
    return t_send, t_start, t_arrive, end_s


class _Pass:
    """A :class:`_Plan` with its per-step constants gathered, and room for its times."""

    def __init__(self, plan: _Plan, slots: np.ndarray, tx_s: np.ndarray, latency_s: np.ndarray,
                 compute_s: np.ndarray) -> None:
        self.plan = plan
        self.latency = latency_s[plan.chan]
        self.ids = slots[:, plan.edges, plan.direction]        # (S, n) transfer ids
        self.tx = tx_s[self.ids]                               # (S, n) transmission times
        self.compute = plan.factor * compute_s[:, plan.nodes]  # (S, n_nodes) compute times
        self.send, self.start, self.arrive = (np.empty(self.ids.shape) for _ in range(3))


def _sweep_scalar(levels: Levels, child: np.ndarray, parent: np.ndarray, chan_fwd: np.ndarray,
                  chan_bwd: np.ndarray, slots: np.ndarray, tx_s: np.ndarray, latency_s: np.ndarray,
                  free_at_s: np.ndarray, compute_s: np.ndarray, backward_factor: float,
                  now_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The sweep on Python floats, transfer by transfer, with the same float operations."""
    n_steps, n_nodes = slots.shape[0], compute_s.shape[1]
    passes = [(list(zip(p.waiting.tolist(), p.waits_on.tolist())), p.nodes.tolist(), p.factor,
               list(zip(p.edges.tolist(), p.senders.tolist(), p.chan.tolist())), p.direction)
              for p in _plans(levels, child, parent, chan_fwd, chan_bwd, backward_factor)]
    ids, tx, compute = slots.tolist(), tx_s.tolist(), compute_s.tolist()
    latency, free = latency_s.tolist(), free_at_s.tolist()
    t_send, t_start, t_arrive = ([math.nan] * len(tx) for _ in range(3))
    clock, recv = [now_s] * n_nodes, [0.0] * len(child)
    for s in range(n_steps):
        ready, ids_s, compute_s_ = clock[:], ids[s], compute[s]
        for waits, nodes, factor, sends, d in passes:
            for v, e in waits:
                if recv[e] > ready[v]:
                    ready[v] = recv[e]
            for v in nodes:
                ready[v] += factor * compute_s_[v]
            for e, v, ch in sends:
                at, i = ready[v], ids_s[e][d]
                start = at if at >= free[ch] else free[ch]
                end = start + tx[i]
                free[ch] = end
                arrive = end + latency[ch]
                t_send[i], t_start[i], t_arrive[i] = at, start, arrive
                recv[e] = at + (arrive - at)
        clock = ready
    free_at_s[:] = free
    end_s = max(clock) if n_steps and n_nodes else now_s
    return np.array(t_send), np.array(t_start), np.array(t_arrive), end_s
