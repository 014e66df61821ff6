"""Energy of a run, from the transfer records and the nodes' compute, nothing else.

Model (coefficients in :class:`~inl_sim.scenario.spec.EnergySpec`):

* **radio**: every record costs its sender ``8 * nbytes * tx_j_per_bit`` and its receiver
  ``8 * nbytes * rx_j_per_bit`` (all directions: activations, errors, parameters, raw
  data: every byte that crosses a link);
* **compute**: a node's training FLOPs times ``j_per_flop``; FLOPs are the module's
  forward ``flops_per_sample`` times the samples it processed, times 3 (forward + a
  backward pass costing twice the forward, the engine's compute-time model);
* **idle**: ``idle_w`` times the simulated time, for every node of the network (a powered
  node draws it whether or not it trains).

Records may be a list of :class:`~inl_sim.sim.accounting.Transfer` or a columns object
with array attributes ``src``, ``dst`` and ``nbytes`` (the columnar ledger), so energy
works with either.  The per-link energy is keyed by the directed link (src, dst).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Mapping, Sequence

import numpy as np

from inl_sim.scenario.spec import EnergySpec
from inl_sim.sim.engine import BACKWARD_FLOPS_FACTOR

__all__ = ["Energy", "run_energy", "transfer_columns", "training_flops", "BITS_PER_BYTE"]

NodeId = Hashable
BITS_PER_BYTE = 8


@dataclass(frozen=True)
class Energy:
    """Energy of one run in joules: per node (tx, rx, compute, idle), per directed link, totals."""

    node_j: dict[NodeId, dict[str, float]]
    link_j: dict[tuple[NodeId, NodeId], dict[str, float]]

    def total(self, part: str = "total") -> float:
        """Sum over nodes of one part (``tx``, ``rx``, ``compute``, ``idle`` or ``total``)."""
        return float(sum(row[part] for row in self.node_j.values()))

    def summary(self) -> dict[str, float]:
        """The flat run totals written to ``summary.json``."""
        return {"energy_j": self.total(), "energy_tx_j": self.total("tx"), "energy_rx_j": self.total("rx"),
                "energy_compute_j": self.total("compute"), "energy_idle_j": self.total("idle")}

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly per-node and per-link energies (node ids as text, links ``u->v``)."""
        return {
            "nodes": [{"node": v, **row} for v, row in self.node_j.items()],
            "links": [{"src": u, "dst": v, **row} for (u, v), row in self.link_j.items()],
            "totals": self.summary(),
        }


def transfer_columns(records: Any) -> tuple[list, list, np.ndarray]:
    """(src, dst, nbytes) of every record, from Transfer records or a columns object."""
    if all(hasattr(records, name) for name in ("src", "dst", "nbytes")) and not isinstance(records, tuple):
        return list(records.src), list(records.dst), np.asarray(records.nbytes, dtype=np.int64)
    src, dst, nbytes = [], [], []
    for r in records:
        src.append(r.src)
        dst.append(r.dst)
        nbytes.append(r.nbytes)
    return src, dst, np.asarray(nbytes, dtype=np.int64)


def training_flops(flops_per_sample: Mapping[NodeId, float], samples: int) -> dict[NodeId, float]:
    """FLOPs each node spent training on ``samples`` samples: forward plus backward."""
    return {v: float(f) * samples * (1.0 + BACKWARD_FLOPS_FACTOR) for v, f in flops_per_sample.items()}


def _bits_per_link(records: Iterable | Any) -> dict[tuple, float]:
    """Bits per directed link (src, dst), every direction and attempt, in order of first
    appearance: summed with numpy on a columnar table, one pass over other records."""
    link_bits: dict[tuple, float] = {}
    if hasattr(records, "bytes_per_link"):
        for (u, v, _), nbytes in records.bytes_per_link().items():
            link_bits[(u, v)] = link_bits.get((u, v), 0.0) + nbytes * BITS_PER_BYTE
        return link_bits
    src, dst, nbytes = transfer_columns(records)
    for u, v, b in zip(src, dst, (nbytes.astype(float) * BITS_PER_BYTE).tolist()):
        link_bits[(u, v)] = link_bits.get((u, v), 0.0) + b
    return link_bits


def run_energy(records: Iterable | Any, flops: Mapping[NodeId, float], spec: EnergySpec, *,
               nodes: Sequence[NodeId], sim_time_s: float = 0.0) -> Energy:
    """Energy per node and per directed link of one run.

    Parameters
    ----------
    records
        The transfer records (or ledger columns) of the run.
    flops
        Training FLOPs per node (:func:`training_flops`); nodes absent computed nothing.
    spec
        The energy coefficients.
    nodes
        Every node of the network, in order (each draws idle power; the rows follow it).
    sim_time_s
        Simulated time of the run, for idle power.
    """
    node_j = {v: {"tx": 0.0, "rx": 0.0, "compute": float(flops.get(v, 0.0)) * spec.j_per_flop,
                  "idle": spec.idle_w * sim_time_s} for v in nodes}
    link_bits = _bits_per_link(records)
    link_j = {}
    for (u, v), b in link_bits.items():
        tx, rx = b * spec.tx_j_per_bit, b * spec.rx_j_per_bit
        link_j[(u, v)] = {"bits": b, "tx_j": tx, "rx_j": rx}
        node_j.setdefault(u, {"tx": 0.0, "rx": 0.0, "compute": 0.0, "idle": 0.0})["tx"] += tx
        node_j.setdefault(v, {"tx": 0.0, "rx": 0.0, "compute": 0.0, "idle": 0.0})["rx"] += rx
    for row in node_j.values():
        row["total"] = row["tx"] + row["rx"] + row["compute"] + row["idle"]
    return Energy(node_j, link_j)
