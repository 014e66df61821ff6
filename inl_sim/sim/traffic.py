"""What the learning plane sent in one epoch, handed to the network plane and the ledger.

The fast engine adds one step's transfers at a time as columns (no tensors, no times);
at the end of the epoch :class:`TrafficRecorder` builds an ``EpochTraffic``, asks the
network plane (:class:`inl_sim.sim.timing.NetworkPlane`) for the send/start/arrival time
of every transfer, and appends the columns to the ledger.  Time does not influence
learning in the fault-free synchronous schedule, so timing after the epoch is exact.
"""

from __future__ import annotations

from typing import Any, Hashable, Sequence

import numpy as np

from inl_sim.sim.accounting import DIRECTIONS

__all__ = ["TrafficRecorder", "epoch_traffic"]

NodeId = Hashable
FORWARD, BACKWARD = DIRECTIONS.index("forward"), DIRECTIONS.index("backward")

from inl_sim.sim.timing import EpochTraffic


def epoch_traffic(epoch: int, steps: Sequence[dict], batch: Sequence[int]) -> Any:
    """Concatenate per-step column dicts into one ``EpochTraffic``."""
    def col(name: str, dtype: type) -> np.ndarray:
        return (np.concatenate([s[name] for s in steps]).astype(dtype, copy=False) if steps
                else np.zeros(0, dtype=dtype))
    return EpochTraffic(epoch=epoch, step=col("step", np.int32), src=col("src", np.int32), dst=col("dst", np.int32),
                        direction=col("direction", np.uint8), n_values=col("n_values", np.int64),
                        nbytes=col("nbytes", np.int64), batch=np.asarray(batch, dtype=np.int32))


class TrafficRecorder:
    """Collects an epoch's transfers, times them with the network plane, fills the ledger.

    ``plane``: a ``NetworkPlane`` (or None: times are NaN, for learning-only use);
    ``nodes``: the node ids the integer columns index (``graph.order``).
    """

    def __init__(self, ledger: Any, nodes: Sequence[NodeId], plane: Any | None = None) -> None:
        self.ledger, self.nodes, self.plane = ledger, tuple(nodes), plane
        self.epoch, self._steps, self._batch = 0, [], []

    @property
    def now_s(self) -> float:
        return float(self.plane.now_s) if self.plane is not None else float("nan")

    def start_epoch(self, epoch: int, n_edges: int) -> None:
        self.epoch, self._steps, self._batch = epoch, [], []

    def add_step(self, step: int, batch: int, forward_nbytes: np.ndarray, backward_nbytes: np.ndarray,
                 child: np.ndarray, parent: np.ndarray, n_values: int) -> None:
        """One step: a forward transfer child -> parent and a backward one back, per active edge."""
        e = child.size
        self._steps.append({
            "step": np.full(2 * e, step, dtype=np.int32),
            "src": np.concatenate([child, parent]), "dst": np.concatenate([parent, child]),
            "direction": np.repeat(np.array([FORWARD, BACKWARD], dtype=np.uint8), e),
            "n_values": np.full(2 * e, n_values, dtype=np.int64),
            "nbytes": np.concatenate([forward_nbytes, backward_nbytes]),
        })
        self._batch.append(batch)

    def finish_epoch(self) -> Any:
        """Time the epoch's traffic and append it to the ledger; return the traffic (None when
        no step completed, e.g. a run that diverged in its first step)."""
        if not self._steps:
            return None
        traffic = epoch_traffic(self.epoch, self._steps, self._batch)
        self._steps, self._batch = [], []
        if self.plane is not None:
            t_send, t_start, t_arrive = self.plane.time_inl_epoch(traffic)
        else:
            t_send = t_start = t_arrive = np.full(traffic.step.size, np.nan)
        self.ledger.extend_columns(traffic.epoch, traffic.step, traffic.src, traffic.dst, traffic.direction,
                                   traffic.n_values, traffic.nbytes, t_send, t_start, t_arrive)
        return traffic
