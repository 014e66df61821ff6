"""The network plane with faults: loss and retransmission, outages, capacity, stragglers, deadlines.

:class:`FaultRecorder` replaces :class:`~inl_sim.sim.traffic.TrafficRecorder` when a
scenario has a ``faults:`` section.  It asks the fault schedule
(:mod:`inl_sim.network.faults`) what the network is like and acts only through the
network plane's SimPy executor: a ``transmit`` hook (outages, retransmissions, capacity)
and the programs' inputs (straggler compute times, deadlines).  The INL program builder
is not edited per fault.

Semantics (also in the README, "Networks as they are: faults"):

* **Steps are timed one by one.**  Under faults the learning plane may need to know
  before a step which inputs will arrive (``deadline``, ``repair``), so each step is
  timed as soon as it is learned, and the next starts when every node finished it.
* **Loss: stop-and-wait ARQ.**  Each attempt on link (u, v) is lost with probability
  p(u, v), independently (seeded); the number of attempts of a message is drawn before
  its step, Geometric(1 - p).  A lost attempt occupies the channel for its serialisation
  time; the sender retransmits ``retransmit_timeout_s`` (default: one round trip,
  2 x latency) after its last bit.  Every attempt is a ledger record (``attempt`` k,
  ``delivered`` False for lost ones): bytes sent sum over attempts, bytes delivered are
  those of delivered records and equal the fault-free run's.
* **Outages.**  An attempt that meets a down link waits until it is up again
  (``policy: wait``).  If nothing brings it back (a permanent failure, or one anchored at
  a step, which cannot come while training waits) training would stall forever:
  :class:`StallError` says so and how to fix the scenario.
* **Deadline** (``policy: deadline``, and ``repair`` inside the epoch of a failure):
  ``deadline_s`` is per level of the training graph: the inputs of a node at level l
  (leaves 0, a parent 1 + its deepest child) are due at ``t0 + l * deadline_s``, where
  ``t0`` is the step's start.  Per level, so that one late input does not make every
  message above it late too.  Before a step, each forward message's arrival is
  estimated from the step start, the senders' compute times (stragglers included) and
  its link's outage, attempts, capacity and latency at the nominal size.  A message
  over a down link is not sent (the receiver does not wait for it); a late one is sent
  (it is a record) and the receiver waits for it until its due time, then goes on with
  zeros in its slot; no error travels back over a dropped link for that step.  Drops
  are counted per epoch.
"""

from __future__ import annotations

import math
from typing import Any, Hashable, Mapping

import numpy as np

from inl_sim.errors import InlSimError
from inl_sim.sim.accounting import DIRECTIONS
from inl_sim.sim.programs import RECV, SEND, UNTIL, Program, inl_programs, inl_transfer_ids

__all__ = ["FaultRecorder", "StallError"]

NodeId = Hashable
FORWARD, BACKWARD = DIRECTIONS.index("forward"), DIRECTIONS.index("backward")
BACKWARD_FLOPS_FACTOR = 2.0  # as the network plane (inl_sim.sim.timing)
_LOSS_STREAM = 0x1055


class StallError(InlSimError, RuntimeError):
    """A transfer waits for a link that nothing will bring back (policy ``wait``)."""


class FaultRecorder:
    """Learns-then-times each step under faults and fills the ledger (see the module docstring).

    Parameters
    ----------
    ledger
        The run's ledger; its node table holds every network node (repairs change the
        training graph, not the ledger).
    plane
        The :class:`~inl_sim.sim.timing.NetworkPlane` of the current training graph.
    schedule
        The run's :class:`~inl_sim.network.faults.FaultSchedule`.
    width, bytes_per_value
        Message width and nominal bytes per value: deadline estimates use messages of
        ``batch * width * bytes_per_value`` bytes (exact for float32 messages).
    """

    def __init__(self, ledger: Any, plane: Any, schedule: Any, *, seed: int, width: int,
                 bytes_per_value: float) -> None:
        self.ledger, self.schedule, self.spec = ledger, schedule, schedule.spec
        self.rng = np.random.default_rng([seed, _LOSS_STREAM])
        self.width, self.bytes_per_value = width, bytes_per_value
        self.global_step, self.epoch = 0, 0
        self.counts = self._zero_counts()
        self.totals = self._zero_counts()
        self.repairs: list[dict] = []   # filled by the repair policy (inl_sim.study.repair)
        self._flops_done: dict[NodeId, float] = {}
        self.plane = None
        self.rebind(plane)

    @staticmethod
    def _zero_counts() -> dict[str, int]:
        return {"dropped_inputs": 0, "dropped_down": 0, "dropped_late": 0, "lost_attempts": 0, "messages": 0}

    def rebind(self, plane: Any) -> None:
        """Time the next steps on ``plane`` (a repaired training graph), keeping the clock."""
        if self.plane is not None:
            self._flops_done = self.flops_by_node()
        self._flops = np.zeros(len(plane.order))
        index = {v: i for i, v in enumerate(self.ledger.nodes)}
        self.plane, self.nodes = plane, plane.nodes
        self.to_ledger = np.array([index[v] for v in plane.nodes], dtype=np.int64)
        self.children, self.parents = plane.children_by_index(), plane.parents_by_index()
        self.edge_of = plane.edge_ids()
        self.fusion = plane.index[plane.graph.fusion]
        n_edges = len(plane.child)
        self.loss = np.array([self.schedule.loss_prob(self.nodes[c], self.nodes[p])
                              for c, p in zip(plane.child.tolist(), plane.parent.tolist())])
        self.loss = np.concatenate([self.loss, self.loss]) if n_edges else np.zeros(0)
        # every step is timed alone, its transfers numbered forward e then backward E + e
        self.slots = np.arange(2 * n_edges, dtype=np.int64).reshape(2, n_edges).T[None]   # (1, E, 2)
        self.ids = inl_transfer_ids(self.slots, self.children, self.parents, self.edge_of)

    @property
    def now_s(self) -> float:
        return float(self.plane.now_s)

    def start_epoch(self, epoch: int, n_edges: int) -> None:
        self.epoch = epoch

    def finish_epoch(self) -> None:
        return None

    def flops_by_node(self) -> dict[NodeId, float]:
        """FLOPs each node spent on the steps it took part in (forward + 2x backward), over
        every training graph of the run: the compute energy of a repaired run."""
        out = dict(self._flops_done)
        for v, f in zip(self.plane.order, self._flops.tolist()):
            out[v] = out.get(v, 0.0) + f
        return out

    def epoch_counts(self) -> dict[str, int]:
        """This epoch's fault counters (and reset them)."""
        out, self.counts = self.counts, self._zero_counts()
        return out

    def cut_edges(self) -> set:
        """Training links (child, parent) that deliver nothing now (deadline and repair; under
        wait nothing is ever cut: messages wait).  Evaluation feeds zeros over them."""
        if self.spec.policy == "wait":
            return set()
        links, nodes = self.schedule.down_now(self.now_s)
        return {(c, p) for c, p in self.plane.graph.edges
                if frozenset((c, p)) in links or c in nodes or p in nodes}

    # ------------------------------------------------------------------ before a step
    def begin_step(self, step: int, batch: int) -> np.ndarray | None:
        """Advance the faults to this step; return the inputs kept, (E,) bool, or None for all."""
        t0 = self.now_s
        self.schedule.begin_step(self.global_step, t0)
        n_edges = len(self.plane.child)
        # attempts per transfer (forward e, then backward e), drawn before the step
        self.attempts = self.rng.geometric(1.0 - self.loss) if n_edges else np.zeros(0, dtype=np.int64)
        flops = self.plane.flops_per_sample * batch / self.plane.flops_per_s
        factors = np.array([self.schedule.stragglers.factor(v) for v in self.plane.order])
        self.compute_s = (flops * factors)[None, :]                      # (1, N)
        self.t0, self.dropped, self.late = t0, np.zeros(n_edges, bool), np.zeros(n_edges, bool)
        if self.spec.policy == "wait" or not n_edges:
            return None
        self._estimate(batch)
        return None if not self.dropped.any() else ~self.dropped

    def _estimate(self, batch: int) -> None:
        """Mark forward messages over a down link, or later than the deadline (nominal sizes)."""
        due = self._due()
        arrive = np.full(len(self.plane.child), math.inf)
        free = self.plane.free_at_s.tolist()
        nbytes = batch * self.width * self.bytes_per_value
        for v in range(len(self.plane.order)):
            ins = [self.edge_of[(c, v)] for c in self.children[v]]
            t_in = max([self.t0] + [arrive[e] for e in ins if not self.dropped[e]])
            if any(self.late[e] for e in ins):
                t_in = max(t_in, due[v])                  # waited for the late input until it was due
            done = t_in + self.compute_s[0, v]
            for p in self.parents[v]:
                e = self.edge_of[(v, p)]
                if self.schedule.link_down(self.nodes[v], self.nodes[p], done):
                    self.dropped[e] = True
                    continue
                arrive[e] = self._deliver(e, int(self.plane.chan_fwd[e]), done, nbytes, free, None)[1]
                if arrive[e] > due[p]:
                    self.dropped[e] = self.late[e] = True

    def _due(self) -> np.ndarray:
        """(N,) when each node's inputs are due this step: ``t0 + level * deadline_s`` (inf: no deadline)."""
        n = len(self.plane.order)
        if self.spec.deadline_s is None:
            return np.full(n, math.inf)
        level = np.zeros(n)
        for v in range(n):                                # children come first in the order
            if self.children[v]:
                level[v] = 1 + max(level[c] for c in self.children[v])
        return self.t0 + level * self.spec.deadline_s

    # ------------------------------------------------------------------ one transmission
    def _deliver(self, i: int, c: int, t: float, nbytes: float, free: list,
                 lost: list | None) -> tuple[float, float]:
        """Stop-and-wait delivery of transfer ``i`` on channel ``c`` sent at ``t``: (start of the
        delivered attempt, its arrival); sets ``free[c]``; lost attempts go to ``lost`` as (start, end)."""
        plane = self.plane
        u, v = self.nodes[plane.chan_src[c]], self.nodes[plane.chan_dst[c]]
        link = frozenset((u, v))
        latency = float(plane.latency_s[c])
        timeout = 2.0 * latency if self.spec.retransmit_timeout_s is None else self.spec.retransmit_timeout_s
        start = t if t > free[c] else free[c]
        k = int(self.attempts[i]) if i < len(self.attempts) else 1
        for attempt in range(1, k + 1):
            start = self.schedule.up_again_at(u, v, start)
            if math.isinf(start):
                return start, math.inf
            end = start + 8.0 * nbytes / (float(plane.capacity_bps[c]) * self.schedule.capacity.factor(link, start))
            if attempt < k:
                if lost is not None:
                    lost.append((start, end))
                start = end + timeout
        free[c] = end
        return start, end + latency

    # ------------------------------------------------------------------ after a step
    def add_step(self, step: int, batch: int, forward_nbytes: np.ndarray, backward_nbytes: np.ndarray,
                 child: np.ndarray, parent: np.ndarray, n_values: int) -> None:
        """Time the step just learned on the faulty network and append its records."""
        e = child.size
        src = np.concatenate([child, parent]).astype(np.int64)
        dst = np.concatenate([parent, child]).astype(np.int64)
        nbytes = np.concatenate([forward_nbytes, backward_nbytes]).astype(np.int64)
        unsent = np.concatenate([self.dropped & ~self.late, self.dropped])   # down: not sent; errors: not sent
        not_waited = np.concatenate([self.dropped, self.dropped])
        programs = self._programs(e, unsent, not_waited)
        lost: dict[int, list] = {}

        def transmit(i: int, c: int, now: float, free: list) -> tuple[float, float]:
            lost[i] = []
            start, arrive = self._deliver(i, c, now, float(nbytes[i]), free, lost[i])
            if math.isinf(arrive):
                u, v = self.nodes[src[i]], self.nodes[dst[i]]
                raise StallError(f"faults: link {u!r}-{v!r} is down at t = {now:.6g} s (epoch {self.epoch}, step "
                                 f"{step}) and nothing brings it back while training waits (policy wait); "
                                 "schedule its recovery with at_time_s or random.mttr_s, or use policy "
                                 "deadline or repair")
            return start, arrive

        t_send, t_start, t_arrive = self.plane.time_programs(programs, src, dst, nbytes, transmit=transmit)
        self._flops += self.plane.flops_per_sample * batch * (1.0 + BACKWARD_FLOPS_FACTOR)
        self._record(step, src, dst, nbytes, n_values, t_send, t_start, t_arrive, unsent, lost)
        self.global_step += 1

    def _programs(self, n_edges: int, unsent: np.ndarray, not_waited: np.ndarray) -> list[Program]:
        programs = inl_programs(self.slots, self.children, self.parents, self.edge_of, self.fusion,
                                self.compute_s, BACKWARD_FLOPS_FACTOR, ids=self.ids)
        if not not_waited.any():
            return programs
        skip_send, skip_recv = set(np.flatnonzero(unsent).tolist()), set(np.flatnonzero(not_waited).tolist())
        due = self._due()
        out = []
        for v, ops in enumerate(programs):
            new: Program = []
            for kind, arg in ops:
                if kind in (RECV, SEND):
                    skip = skip_recv if kind == RECV else skip_send
                    kept = [i for i in arg if i not in skip]
                    new.append((kind, kept))
                    if kind == RECV and any(i < n_edges and self.late[i] for i in arg):
                        new.append((UNTIL, float(due[v])))   # waited for the late input until it was due
                else:
                    new.append((kind, arg))
            out.append(new)
        return out

    def _record(self, step: int, src: np.ndarray, dst: np.ndarray, nbytes: np.ndarray, n_values: int,
                t_send: np.ndarray, t_start: np.ndarray, t_arrive: np.ndarray, unsent: np.ndarray,
                lost: dict[int, list]) -> None:
        """Ledger rows: per sent transfer, its lost attempts then its delivered one."""
        n_edges = len(src) // 2
        sent = np.flatnonzero(~unsent)
        n_lost = np.array([len(lost.get(i, ())) for i in sent.tolist()], dtype=np.int64)
        counts = n_lost + 1                                   # lost attempts, then the delivered one
        idx = np.repeat(sent, counts)
        first = np.repeat(np.cumsum(counts) - counts, counts)
        attempt = np.arange(len(idx), dtype=np.int64) - first + 1
        delivered = attempt == np.repeat(counts, counts)
        start, arrive = t_start[idx], t_arrive[idx]
        if n_lost.any():   # a lost attempt: its own start, and the arrival it would have had
            where = np.flatnonzero(~delivered)
            spans = np.array([ab for i in sent[n_lost > 0].tolist() for ab in lost[i]])
            start[where] = spans[:, 0]
            arrive[where] = spans[:, 1] + self._latency(idx[where])
        direction = np.where(idx < n_edges, FORWARD, BACKWARD).astype(np.uint8)
        self.ledger.extend_columns(
            self.epoch, np.full(len(idx), step, dtype=np.int32), self.to_ledger[src[idx]], self.to_ledger[dst[idx]],
            direction, np.full(len(idx), n_values, dtype=np.int64), nbytes[idx],
            t_send[idx], start, arrive, attempt, delivered)
        for totals in (self.counts, self.totals):
            totals["dropped_inputs"] += int(self.dropped.sum())
            totals["dropped_late"] += int(self.late.sum())
            totals["dropped_down"] += int((self.dropped & ~self.late).sum())
            totals["lost_attempts"] += int(n_lost.sum())
            totals["messages"] += len(sent)

    def _latency(self, i: np.ndarray) -> np.ndarray:
        """Latency of the channel of each transfer id (forward e, backward E + e)."""
        chan = np.concatenate([self.plane.chan_fwd, self.plane.chan_bwd])
        return self.plane.latency_s[chan[i]]
