"""The fault-free INL schedule as a vectorised sweep over the levels of the training graph.

Without faults every INL step is the same dependency pattern: a node's forward waits
for its children, its backward for its parents, and each directed channel carries one
message per step.  So the times of a step follow from two passes over the *levels* of
the training DAG (level 0: nodes without children; a node's level is one more than its
highest child's), each pass a handful of numpy operations per level instead of one
SimPy event per transfer.  Every time is computed with the very float operations of the
SimPy executor (:func:`inl_sim.sim.programs.run_programs`): ``ready + compute``,
``max(send, channel free)``, ``start + tx``, ``end + latency`` and a delivery at ``send +
(arrive - send)``; ``tests/test_timing.py`` holds the two equal, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def sweep_inl(levels: Levels, child: np.ndarray, parent: np.ndarray, chan_fwd: np.ndarray,
              chan_bwd: np.ndarray, slots: np.ndarray, tx_s: np.ndarray, latency_s: np.ndarray,
              free_at_s: np.ndarray, compute_s: np.ndarray, backward_factor: float,
              now_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Times of an INL epoch; same inputs and meaning as :func:`~inl_sim.sim.programs.inl_programs`.

    ``slots`` (S, E, 2) maps (step, edge, direction) to transfer ids; ``compute_s`` (S, N)
    is each node's forward time per step; ``free_at_s`` (C,) is updated in place.
    Returns ``(t_send_s, t_start_s, t_arrive_s, end_s)``.
    """
    n_transfers = len(tx_s)
    t_send, t_start, t_arrive = (np.full(n_transfers, np.nan) for _ in range(3))
    n_nodes, n_edges = compute_s.shape[1], len(child)
    clock = np.full(n_nodes, now_s)
    recv = np.empty(n_edges)  # delivery time of this step's message on each edge

    def send(edges: np.ndarray, at: np.ndarray, chan: np.ndarray, ids: np.ndarray) -> None:
        # one message per channel per pass: the FIFO rule is a vectorised max
        start = np.maximum(at, free_at_s[chan])
        end = start + tx_s[ids]
        free_at_s[chan] = end
        arrive = end + latency_s[chan]
        t_send[ids], t_start[ids], t_arrive[ids] = at, start, arrive
        recv[edges] = at + (arrive - at)

    for s in range(slots.shape[0]):
        fwd_ids, bwd_ids, forward_s = slots[s, :, 0], slots[s, :, 1], compute_s[s]
        ready = clock.copy()
        for nodes, e_in, e_out in zip(levels.nodes, levels.edges_in, levels.edges_out):
            np.maximum.at(ready, parent[e_in], recv[e_in])
            ready[nodes] += forward_s[nodes]
            send(e_out, ready[child[e_out]], chan_fwd[e_out], fwd_ids[e_out])
        for nodes, e_in, e_out in zip(reversed(levels.nodes), reversed(levels.edges_in),
                                      reversed(levels.edges_out)):
            np.maximum.at(ready, child[e_out], recv[e_out])
            ready[nodes] += backward_factor * forward_s[nodes]
            send(e_in, ready[parent[e_in]], chan_bwd[e_in], bwd_ids[e_in])
        clock = ready
    end_s = float(clock.max()) if slots.shape[0] and n_nodes else now_s
    return t_send, t_start, t_arrive, end_s
