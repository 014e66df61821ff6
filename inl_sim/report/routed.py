"""Per-link bytes of the paradigms that send over routes (``parameters``, ``raw_data``).

INL's per-link bytes come from :func:`inl_sim.sim.metrics.bytes_by_link` (forward
child -> parent, backward back).  Federated parameters travel both ways along a route
and centralised raw views towards the fusion node; each record is put on its link of
the run's route tree (``training_graph.json``: edges child -> parent), so the report's
per-link panels show where those paradigms' traffic goes too.
"""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["ROUTED_DIRECTIONS", "add_routed_bytes"]

ROUTED_DIRECTIONS = ("parameters", "raw_data")


def add_routed_bytes(total: dict[tuple[str, str], dict[str, float]], run: Mapping[str, Any], n_runs: int) -> None:
    """Add ``run``'s parameter and raw-data bytes / ``n_runs`` to ``total[(child, parent)][direction]``."""
    summary = run["summary"]
    if not any(summary.get(f"exchange_bytes_{d}") for d in ROUTED_DIRECTIONS):
        return  # INL: nothing to add, skip the pass over its records
    tree = {(str(c), str(p)) for c, p in run["training_graph"]["edges"]}
    for r in run["records"]:
        if r.direction not in ROUTED_DIRECTIONS:
            continue
        key = (str(r.src), str(r.dst))
        key = key if key in tree else key[::-1]
        cell = total.setdefault(key, {"forward": 0.0, "backward": 0.0})
        cell[r.direction] = cell.get(r.direction, 0.0) + r.nbytes / n_runs
