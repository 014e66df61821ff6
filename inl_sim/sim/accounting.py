"""The transfer ledger: one flat, immutable record per crossing of a link.

Every metric about communication (exchange bytes, per-link and per-epoch splits, the
timeline of one step) is computed from these records and nothing else.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Hashable, Iterable, NamedTuple

__all__ = ["Transfer", "Ledger", "DIRECTIONS", "FIELDS"]

DIRECTIONS = ("forward", "backward", "parameters", "raw_data")


class Transfer(NamedTuple):
    """One message over one directed link.

    ``t_send_s``: when the sender handed it to the link; ``t_start_s``: when the link
    began serialising it (later if the channel was busy); ``t_arrive_s``: when the last
    bit reached the receiver.  ``nbytes`` is the size of what actually crossed.
    """

    epoch: int
    step: int
    src: Hashable
    dst: Hashable
    direction: str
    n_values: int
    nbytes: int
    t_send_s: float
    t_start_s: float
    t_arrive_s: float


FIELDS = Transfer._fields


class Ledger:
    """Append-only list of :class:`Transfer` records with a few derived totals."""

    def __init__(self) -> None:
        self.records: list[Transfer] = []

    def add(self, record: Transfer) -> None:
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def total_bytes(self, direction: str | None = None, epoch: int | None = None) -> int:
        """Sum of ``nbytes`` over records matching ``direction`` and ``epoch`` (None = all)."""
        return sum(r.nbytes for r in self.records
                   if (direction is None or r.direction == direction) and (epoch is None or r.epoch == epoch))

    def bytes_per_link(self) -> dict[tuple[Hashable, Hashable, str], int]:
        """Bytes per (src, dst, direction)."""
        out: dict = {}
        for r in self.records:
            key = (r.src, r.dst, r.direction)
            out[key] = out.get(key, 0) + r.nbytes
        return out

    def write_csv(self, path: Path) -> None:
        write_records(path, self.records)


def write_records(path: Path, records: Iterable[Transfer]) -> None:
    """CSV with one header line and one row per transfer."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(FIELDS)
        writer.writerows(records)
