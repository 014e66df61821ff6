"""The network plane: it owns simulated time and never touches a tensor.

The learning plane trains a whole step and reports what crossed which link
(:class:`EpochTraffic`: sizes and endpoints, no times).  :class:`NetworkPlane` turns an
epoch's traffic into send, start and arrival times with the 0.1 semantics of the
reference engine (:mod:`inl_sim.sim.engine` + :mod:`inl_sim.sim.links`): each node loops
over the steps, waits for every child's activation, computes forward for
``flops_per_sample * batch / flops_per_s`` seconds, sends to every parent, waits for
every parent's error, computes backward (twice the forward time) and sends each child its
error; each direction of a link is a FIFO channel (start = max(send, channel free),
arrival = start + 8 * nbytes / capacity_bps + latency_s).  The clock persists across
epochs.

Two executors give the same times: ``simpy`` runs one process per node over generic
programs of ops (:mod:`inl_sim.sim.programs`; new paradigms and faults plug in there);
``sweep`` (the default for fault-free INL) computes the same floats level by level with
numpy (:mod:`inl_sim.sim.sweep`), about a hundred times faster at 10,000 nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Iterable, Mapping, Sequence

import numpy as np
import simpy

from inl_sim.errors import InlSimError
from inl_sim.sim.accounting import DIRECTIONS, Ledger
from inl_sim.sim.programs import Program, Transmit, inl_programs, run_programs
from inl_sim.sim.sweep import levels_of, sweep_inl

__all__ = ["EpochTraffic", "NetworkPlane", "TrafficError", "EXECUTORS", "BACKWARD_FLOPS_FACTOR"]

NodeId = Hashable
BACKWARD_FLOPS_FACTOR = 2.0  # backward costs about twice the forward pass (as the reference engine)
EXECUTORS = ("sweep", "simpy")
_DTYPES = {"step": np.int32, "src": np.int32, "dst": np.int32, "direction": np.uint8,
           "n_values": np.int64, "nbytes": np.int64}


class TrafficError(InlSimError, ValueError):
    """Traffic handed to the network plane does not fit the training graph."""


@dataclass(frozen=True)
class EpochTraffic:
    """What the learning plane sent in one epoch: endpoints and sizes, no tensors, no times.

    ``src``/``dst`` index ``graph.order``; ``direction`` indexes
    :data:`inl_sim.sim.accounting.DIRECTIONS`; ``batch[s]`` is the number of samples of
    step ``s`` (compute time scales with it).  Arrays are coerced to the dtypes below.
    """

    epoch: int
    step: np.ndarray         # int32 (T,)
    src: np.ndarray          # int32 (T,)
    dst: np.ndarray          # int32 (T,)
    direction: np.ndarray    # uint8 (T,)
    n_values: np.ndarray     # int64 (T,)
    nbytes: np.ndarray       # int64 (T,)
    batch: np.ndarray        # int32 (n_steps,)

    def __post_init__(self) -> None:
        n = None
        for name, dtype in _DTYPES.items():
            arr = np.asarray(getattr(self, name))
            if arr.ndim != 1 or (n is not None and len(arr) != n):
                raise TrafficError(f"EpochTraffic.{name}: shape {arr.shape} must be ({n or 'T'},) like the "
                                   "other columns; give one entry per transfer")
            n = len(arr)
            object.__setattr__(self, name, arr.astype(dtype, copy=False))
        object.__setattr__(self, "batch", np.asarray(self.batch).astype(np.int32, copy=False).reshape(-1))
        if n and (self.step.min() < 0 or self.step.max() >= len(self.batch)):
            raise TrafficError(f"EpochTraffic.step: values {self.step.min()}..{self.step.max()} must index "
                               f"batch (length {len(self.batch)}); give one batch size per step")
        if n and self.direction.max() >= len(DIRECTIONS):
            raise TrafficError(f"EpochTraffic.direction: {int(self.direction.max())} is not an index into "
                               f"{DIRECTIONS}; use 0 forward, 1 backward")

    def __len__(self) -> int:
        return len(self.step)

    @classmethod
    def from_records(cls, records: Iterable, nodes: Sequence[NodeId], epoch: int,
                     batch: Sequence[int]) -> "EpochTraffic":
        """Rebuild one epoch's traffic from :class:`~inl_sim.sim.accounting.Transfer` records."""
        index = {v: i for i, v in enumerate(nodes)}
        rows = [(r.step, index[r.src], index[r.dst], DIRECTIONS.index(r.direction), r.n_values, r.nbytes)
                for r in records if r.epoch == epoch]
        cols = np.array(rows, dtype=np.int64).reshape(-1, 6).T
        return cls(epoch, *cols, batch=np.asarray(batch))


class NetworkPlane:
    """Times the traffic of a training graph on a network; owns the clock ``now_s``.

    Parameters
    ----------
    network
        The :class:`~inl_sim.network.Network`: links carry ``capacity_bps`` and
        ``latency_s``, nodes ``flops_per_s``.
    graph
        The :class:`~inl_sim.network.routing.TrainingGraph`; transfers index ``graph.order``.
    flops_per_sample
        Forward FLOPs per sample of each node's module.
    executor
        ``"sweep"`` (vectorised, fault-free INL) or ``"simpy"`` (one process per node);
        both give the same times.
    """

    def __init__(self, network, graph, flops_per_sample: Mapping[NodeId, int], *,  # type: ignore[no-untyped-def]
                 executor: str = "sweep") -> None:
        if executor not in EXECUTORS:
            raise TrafficError(f"executor: {executor!r} is not known; choose one of {EXECUTORS}")
        self.executor, self.graph, self.order = executor, graph, tuple(graph.order)
        live = set(self.order)
        #: node table: the training graph's order first (what EpochTraffic indexes), then
        #: the network's other nodes (relays of multi-hop routes for other paradigms)
        self.nodes = self.order + tuple(v for v in network.graph.nodes if v not in live)
        self.index = {v: i for i, v in enumerate(self.nodes)}
        n = len(self.order)
        self.flops_per_sample = np.array([int(flops_per_sample[v]) for v in self.order], dtype=np.int64)
        self.flops_per_s = np.array([float(network.graph.nodes[v]["flops_per_s"]) for v in self.order])
        self.network = network
        self.child = np.array([self.index[c] for c, _ in graph.edges], dtype=np.int64)
        self.parent = np.array([self.index[p] for _, p in graph.edges], dtype=np.int64)
        n_edges = len(self.child)
        # channels of the active links first: e carries activations child -> parent,
        # n_edges + e the errors back; other links get channels when first used
        self.chan_fwd = np.arange(n_edges, dtype=np.int64)
        self.chan_bwd = n_edges + self.chan_fwd
        adj = network.graph.adj
        links = [adj[c][p] for c, p in graph.edges]
        cap = np.array([float(a["capacity_bps"]) for a in links])
        lat = np.array([float(a["latency_s"]) for a in links])
        self.chan_src = np.concatenate([self.child, self.parent])
        self.chan_dst = np.concatenate([self.parent, self.child])
        #: per channel: capacity, latency and when it is next free (persists across epochs)
        self.capacity_bps, self.latency_s = np.tile(cap, 2), np.tile(lat, 2)
        self.free_at_s = np.zeros(2 * n_edges)
        self._index_channels()
        self._edge_key = self.child * n + self.parent
        self._by_key = np.argsort(self._edge_key, kind="stable")
        self._levels = levels_of(n, self.child, self.parent, np.arange(n))
        self.now_s = 0.0
        self.env = simpy.Environment()

    def _index_channels(self) -> None:
        self._chan_key = self.chan_src * len(self.nodes) + self.chan_dst
        self._chan_sorted = np.argsort(self._chan_key, kind="stable")

    def _lookup(self, key: np.ndarray) -> np.ndarray:
        """Channel id per key (a channel whose key differs where none exists)."""
        if not len(self._chan_key):
            return np.zeros(len(key), dtype=np.int64)
        sorted_keys = self._chan_key[self._chan_sorted]
        return self._chan_sorted[np.minimum(np.searchsorted(sorted_keys, key), len(sorted_keys) - 1)]

    def channel_of(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Channel ids of directed links ``src -> dst`` (indices into :attr:`nodes`).

        A link of the network outside the training graph gets its channel on first use.
        """
        src, dst = np.asarray(src, dtype=np.int64).ravel(), np.asarray(dst, dtype=np.int64).ravel()
        key = src * len(self.nodes) + dst
        found = self._lookup(key)
        missing = np.flatnonzero(self._chan_key[found] != key) if len(self._chan_key) else np.arange(len(key))
        if len(missing):
            adj = self.network.graph.adj
            new = []
            for k in np.unique(key[missing]).tolist():
                u, v = divmod(k, len(self.nodes))
                if self.nodes[v] not in adj[self.nodes[u]]:
                    i = int(missing[np.flatnonzero(key[missing] == k)[0]])
                    raise TrafficError(f"transfer {i}: {self.nodes[u]!r} -> {self.nodes[v]!r} is not a link of "
                                       "the network; send over a route, one transfer per hop")
                new.append((u, v, adj[self.nodes[u]][self.nodes[v]]))
            self.chan_src = np.append(self.chan_src, [u for u, _, _ in new])
            self.chan_dst = np.append(self.chan_dst, [v for _, v, _ in new])
            self.capacity_bps = np.append(self.capacity_bps, [float(a["capacity_bps"]) for _, _, a in new])
            self.latency_s = np.append(self.latency_s, [float(a["latency_s"]) for _, _, a in new])
            self.free_at_s = np.append(self.free_at_s, np.zeros(len(new)))
            self._index_channels()
            found = self._lookup(key)
        return found

    # ------------------------------------------------------------------ any paradigm
    def time_programs(self, programs: Sequence[Program], src: np.ndarray, dst: np.ndarray,
                      nbytes: np.ndarray, *, transmit: Transmit | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run node programs (see :mod:`inl_sim.sim.programs`) from :attr:`now_s` with SimPy.

        ``src``/``dst``/``nbytes`` describe the transfers the programs' ids refer to
        (``src``/``dst`` index :attr:`nodes`; a multi-hop route is one transfer per hop).
        Any paradigm's traffic is timed this way; ``transmit`` replaces the fault-free
        FIFO rule (see :func:`~inl_sim.sim.programs.run_programs`).  Returns send, start
        and arrival times.
        """
        chan = self.channel_of(src, dst)
        tx_s = 8.0 * np.asarray(nbytes, dtype=np.int64) / self.capacity_bps[chan]
        env = self._env_at(self.now_s)
        times = run_programs(env, programs, chan, tx_s, self.latency_s, self.free_at_s, transmit=transmit)
        self.now_s = float(env.now)
        return times

    # ------------------------------------------------------------------ INL
    def time_inl_epoch(self, traffic: EpochTraffic) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Send, start and arrival times (s) of each transfer of an INL epoch, in the given order.

        Advances :attr:`now_s` to the moment the last node finished the epoch.
        """
        slots, edge = self._slots(traffic)
        # (S, N): the reference engine's flops_per_sample * batch / flops_per_s, float op for float op
        compute_s = (self.flops_per_sample[None, :] * traffic.batch.astype(np.int64)[:, None]) / self.flops_per_s
        if self.executor == "simpy":
            programs = inl_programs(slots, self.children_by_index(), self.parents_by_index(), self.edge_ids(),
                                    self.index[self.graph.fusion], compute_s, BACKWARD_FLOPS_FACTOR)
            return self.time_programs(programs, traffic.src, traffic.dst, traffic.nbytes)
        chan = np.where(traffic.direction == 0, self.chan_fwd[edge], self.chan_bwd[edge])
        tx_s = 8.0 * traffic.nbytes / self.capacity_bps[chan]
        t_send, t_start, t_arrive, self.now_s = sweep_inl(
            self._levels, self.child, self.parent, self.chan_fwd, self.chan_bwd, slots, tx_s,
            self.latency_s, self.free_at_s, compute_s, BACKWARD_FLOPS_FACTOR, self.now_s)
        return t_send, t_start, t_arrive

    def record_inl_epoch(self, traffic: EpochTraffic, ledger: Ledger) -> None:
        """Time an epoch and append its transfers to ``ledger`` (built with ``nodes=graph.order``)."""
        times = self.time_inl_epoch(traffic)
        ledger.extend_columns(traffic.epoch, traffic.step, traffic.src, traffic.dst, traffic.direction,
                              traffic.n_values, traffic.nbytes, *times)

    def _slots(self, traffic: EpochTraffic) -> tuple[np.ndarray, np.ndarray]:
        """(S, E, 2) transfer id per (step, edge, direction) and each transfer's edge.

        INL sends exactly one message per step, active edge and direction; anything else
        (a missing or doubled message, a transfer off the training graph) is an error.
        """
        n, n_edges, n_steps = len(self.order), len(self.child), len(traffic.batch)
        if len(traffic) and traffic.direction.max() > 1:
            raise TrafficError("EpochTraffic.direction: INL timing takes forward (0) and backward (1) only; "
                               "other kinds need their own program builder")
        for name in ("src", "dst"):
            col = getattr(traffic, name)
            if len(col) and (col.min() < 0 or col.max() >= n):
                raise TrafficError(f"EpochTraffic.{name}: indices {col.min()}..{col.max()} must index "
                                   f"graph.order (0..{n - 1})")
        forward = traffic.direction == 0
        child = np.where(forward, traffic.src, traffic.dst).astype(np.int64)
        parent = np.where(forward, traffic.dst, traffic.src).astype(np.int64)
        key = child * n + parent
        if n_edges:
            pos = np.minimum(np.searchsorted(self._edge_key[self._by_key], key), n_edges - 1)
            edge = self._by_key[pos]
            bad = np.flatnonzero(self._edge_key[edge] != key)
        else:
            edge, bad = np.zeros(len(key), dtype=np.int64), np.arange(len(key))
        if len(bad):
            i = int(bad[0])
            raise TrafficError(f"EpochTraffic: transfer {i} ({self.order[traffic.src[i]]!r} -> "
                               f"{self.order[traffic.dst[i]]!r}) is not on an active link of the training graph")
        flat = (traffic.step.astype(np.int64) * n_edges + edge) * 2 + traffic.direction
        counts = np.bincount(flat, minlength=n_steps * n_edges * 2)
        if len(counts) and (counts.min() != 1 or counts.max() != 1):
            k = int(np.flatnonzero(counts != 1)[0])
            (s, e), d = divmod(k // 2, n_edges), k % 2
            raise TrafficError(f"EpochTraffic: step {s}, link {self.order[self.child[e]]!r} -> "
                               f"{self.order[self.parent[e]]!r}, {DIRECTIONS[d]}: {int(counts[k])} transfers; "
                               "INL sends exactly one per step, link and direction")
        slots = np.empty(n_steps * n_edges * 2, dtype=np.int64)
        slots[flat] = np.arange(len(flat))
        return slots.reshape(n_steps, n_edges, 2), edge

    def _env_at(self, t: float) -> simpy.Environment:
        """The SimPy clock at ``t`` (the sweep may have moved time on since it last ran)."""
        if self.env.now != t:
            self.env = simpy.Environment(initial_time=t)
        return self.env

    # ------------------------------------------------------------------ index views
    # (node positions in :attr:`order`, edge ids in :attr:`child`/:attr:`parent`): what
    # program builders (:func:`~inl_sim.sim.programs.inl_programs`, the fault recorder) take
    def children_by_index(self) -> list[list[int]]:
        """Per node position, its children's positions (the training graph's order)."""
        return [[self.index[c] for c in self.graph.children[v]] for v in self.order]

    def parents_by_index(self) -> list[list[int]]:
        """Per node position, its parents' positions."""
        return [[self.index[p] for p in self.graph.parents[v]] for v in self.order]

    def edge_ids(self) -> dict[tuple[int, int], int]:
        """(child position, parent position) -> edge id."""
        return {(c, p): e for e, (c, p) in enumerate(zip(self.child.tolist(), self.parent.tolist()))}
