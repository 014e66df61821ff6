"""Node programs for the network plane, and the SimPy executor that runs them.

A *program* is what one node does during an epoch, as a list of ops:

* ``(RECV, ids)``: wait until every transfer in ``ids`` has arrived here;
* ``(COMPUTE, seconds)``: be busy for ``seconds``;
* ``(SEND, ids)``: hand each transfer in ``ids`` to its channel, in that order;
* ``(UNTIL, t_s)``: be idle until the absolute time ``t_s`` (a deadline: a node that
  gave up on a late input still waited for it until then).

The executor knows nothing about learning: it sees transfer ids, channels and sizes.
Paradigms are program *builders* (:func:`inl_programs` here; centralised, federated and
split learning over multi-hop routes in :mod:`inl_sim.sim.routed`), and faults will be
events acting on channels and processes, so neither edits the executor.  Each direction of a link is a FIFO channel: a transfer
starts at ``max(send time, channel free)`` and arrives ``8 * nbytes / capacity_bps +
latency_s`` after it started, exactly as :class:`inl_sim.sim.links.Channel` does.
"""

from __future__ import annotations

from typing import Callable, Generator, Sequence

import numpy as np
import simpy
from simpy.core import NORMAL

from inl_sim.network.gcpause import paused_gc

__all__ = ["RECV", "COMPUTE", "SEND", "UNTIL", "Program", "Transmit", "Delivery", "run_programs", "fifo",
           "inl_programs", "inl_transfer_ids"]

RECV, COMPUTE, SEND, UNTIL = 0, 1, 2, 3
#: One node's ops for an epoch: (RECV, ids) | (COMPUTE, seconds) | (SEND, ids) | (UNTIL, t_s).
Program = list[tuple[int, object]]
#: transmit(transfer id, channel id, send time, free times per channel) -> (start, arrive)
Transmit = Callable[[int, int, float, list], tuple[float, float]]


class Delivery(simpy.Event):
    """The arrival of one transfer at its receiver.

    Created before anybody sends, so a receiver can wait on a transfer that has not
    left yet; :meth:`schedule` fires it ``delay`` seconds later, the way a
    :class:`simpy.Timeout` fires (a receiver resumes at ``send time + delay``, the same
    float the reference engine's ``env.timeout(arrival - now)`` produces).
    """

    __slots__ = ()

    def schedule(self, delay: float) -> None:
        self._ok = True
        self._value = None
        self.env.schedule(self, NORMAL, delay)


def run_programs(env: simpy.Environment, programs: Sequence[Program], channel: np.ndarray,
                 tx_s: np.ndarray, latency_s: np.ndarray, free_at_s: np.ndarray, *,
                 transmit: Transmit | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run one SimPy process per program until all finish; return the transfers' times.

    Parameters
    ----------
    env
        The clock; it persists across epochs (``env.now`` is where this epoch starts).
    programs
        One program per node (see the module docstring).
    channel
        (T,) channel index of every transfer.
    tx_s
        (T,) serialisation time of every transfer on its channel, ``8 * nbytes / capacity``.
    latency_s
        (C,) latency of every channel.
    free_at_s
        (C,) when each channel finishes what it already carries; updated in place.
    transmit
        Replaces the fault-free FIFO rule: ``transmit(i, channel, now, free) -> (start,
        arrive)`` for transfer ``i`` sent at ``now``; it must set ``free[channel]`` (a list)
        to when the channel can start the next message.  A fault model (a link that is
        down for a while, a capacity that varies) is such a function, not an edit here.

    Returns
    -------
    (t_send_s, t_start_s, t_arrive_s), each (T,) float64, in transfer-id order.
    """
    n = len(channel)
    times = tuple(np.full(n, np.nan) for _ in range(3))   # t_send, t_start, t_arrive
    deliveries = [Delivery(env) for _ in range(n)]
    chan, free = channel.tolist(), free_at_s.tolist()
    send = transmit if transmit is not None else fifo(tx_s.tolist(), latency_s.tolist())
    # SimPy allocates an event per transfer: hundreds of thousands of short-lived objects
    # re-trigger full collections (~40 % of the CPU time at 2,000 nodes); refcounting frees them.
    with paused_gc():
        for ops in programs:
            env.process(_node_process(env, ops, deliveries, chan, free, send, times))
        env.run()
    free_at_s[:] = free
    return times


def fifo(tx: Sequence[float], lat: Sequence[float]) -> Transmit:
    """The fault-free rule: a transfer starts when sent or when its channel frees up, and
    arrives its serialisation time plus the channel's latency after it starts."""
    def transmit(i: int, c: int, now: float, free: list) -> tuple[float, float]:
        start = now if now > free[c] else free[c]
        free[c] = end = start + tx[i]
        return start, end + lat[c]
    return transmit


def _node_process(env: simpy.Environment, ops: Program, deliveries: Sequence[Delivery], chan: Sequence[int],
                  free: list, transmit: Transmit, times: tuple[np.ndarray, ...]) -> Generator:
    """One node's program as a SimPy process."""
    t_send, t_start, t_arrive = times
    for kind, arg in ops:
        if kind == RECV:
            for i in arg:
                event = deliveries[i]
                if event.callbacks is not None:  # not yet processed: wait for it
                    yield event
        elif kind == COMPUTE:
            yield env.timeout(arg)
        elif kind == UNTIL:
            if arg > env.now:
                yield env.timeout(arg - env.now)
        else:
            now = env.now
            for i in arg:
                start, arrive = transmit(i, chan[i], now, free)
                t_send[i], t_start[i], t_arrive[i] = now, start, arrive
                deliveries[i].schedule(arrive - now)


#: per node, per step, its transfer ids: (forward in, forward out, backward out, backward in)
NodeIds = tuple[list, list, list, list]


def inl_transfer_ids(slots: np.ndarray, children: Sequence[Sequence[int]], parents: Sequence[Sequence[int]],
                     edge_of: dict[tuple[int, int], int]) -> list[NodeIds]:
    """Per node, the (S, k) lists of the transfer ids its INL program waits for and sends:
    activations in (one per child) and out (one per parent), errors from the parents and
    to the children.  The structural half of :func:`inl_programs`, which callers that time
    the same graph step after step (the fault recorder) compute once."""
    out = []
    for v in range(len(children)):
        in_edges = [edge_of[(c, v)] for c in children[v]]
        out_edges = [edge_of[(v, p)] for p in parents[v]]
        out.append((slots[:, in_edges, 0].tolist(), slots[:, out_edges, 0].tolist(),
                    slots[:, out_edges, 1].tolist(), slots[:, in_edges, 1].tolist()))
    return out


def inl_programs(slots: np.ndarray, children: Sequence[Sequence[int]], parents: Sequence[Sequence[int]],
                 edge_of: dict[tuple[int, int], int], fusion: int, compute_s: np.ndarray,
                 backward_factor: float, *, ids: Sequence[NodeIds] | None = None) -> list[Program]:
    """The INL/D-INL programs of one epoch, one per node of the training graph.

    Per step a node waits for every child's activation, computes forward, sends to every
    parent (the fusion node computes the loss instead), waits for every parent's error,
    computes backward (``backward_factor`` times the forward time), and sends each child
    its error.  ``slots[s, e, d]`` is the transfer id of step ``s`` on training edge ``e``
    in direction ``d`` (0 forward, 1 backward); ``compute_s[s, v]`` is node ``v``'s forward
    time at step ``s``.  ``ids``: :func:`inl_transfer_ids` of the same arguments, if the
    caller kept them.
    """
    ids = inl_transfer_ids(slots, children, parents, edge_of) if ids is None else ids
    n_steps = slots.shape[0]
    programs: list[Program] = []
    compute_by_node = compute_s.T.tolist()   # (N, S): one conversion, not one per node
    for v, (fwd_in, fwd_out, bwd_out, bwd_in) in enumerate(ids):
        forward_s = compute_by_node[v]
        ops: Program = []
        for s in range(n_steps):
            ops.append((RECV, fwd_in[s]))
            ops.append((COMPUTE, forward_s[s]))
            if v != fusion:
                ops.append((SEND, fwd_out[s]))
                ops.append((RECV, bwd_out[s]))
            ops.append((COMPUTE, backward_factor * forward_s[s]))
            ops.append((SEND, bwd_in[s]))
        programs.append(ops)
    return programs
