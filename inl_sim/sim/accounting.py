"""The transfer ledger: one flat, immutable record per crossing of a link, kept as columns.

Every metric about communication (exchange bytes, per-link and per-epoch splits, the
timeline of one step) is computed from these records and nothing else.  The ledger
stores them as numpy columns in blocks (47 bytes per transfer, see
:data:`~inl_sim.sim.table.COLUMN_DTYPES`): the learning and network planes append a whole
epoch at once with :meth:`Ledger.extend_columns`; the reference engine appends one
:class:`Transfer` at a time with :meth:`Ledger.add`.  :attr:`Ledger.records` is a
:class:`~inl_sim.sim.table.TransferTable` (namedtuples on iteration, a DataFrame with
pandas, Parquet with pyarrow).
"""

from __future__ import annotations

from pathlib import Path
from typing import Hashable, Sequence

import numpy as np

from inl_sim.sim.table import (COLUMN_DTYPES, DIRECTIONS, FIELDS, Transfer, TransferTable, encode_rows, fit,
                               write_parquet, write_records)

__all__ = ["Transfer", "Ledger", "TransferTable", "DIRECTIONS", "FIELDS", "write_records", "write_parquet"]

NodeId = Hashable
_PENDING_ROWS = 8_192  # records from add() are packed into columns this many at a time


class Ledger:
    """Append-only transfer records as columns, with vectorised totals.

    Parameters
    ----------
    nodes
        The node table that ``src``/``dst`` indices of :meth:`extend_columns` refer to
        (``graph.order``).  :meth:`add` appends unknown node ids to it.
    """

    def __init__(self, nodes: Sequence[NodeId] = ()) -> None:
        self._nodes: list[NodeId] = list(nodes)
        self._index: dict[NodeId, int] = {v: i for i, v in enumerate(self._nodes)}
        self._blocks: list[dict[str, np.ndarray]] = []
        self._pending: list[Transfer] = []
        self._n_blocks_rows = 0

    @property
    def nodes(self) -> tuple[NodeId, ...]:
        return tuple(self._nodes)

    def add(self, record: Transfer) -> None:
        """Append one record (node ids and direction name, as the reference engine makes them)."""
        self._pending.append(record)
        if len(self._pending) >= _PENDING_ROWS:
            self._flush()

    def extend_columns(self, epoch: int | np.ndarray, step: np.ndarray, src: np.ndarray, dst: np.ndarray,
                       direction: np.ndarray, n_values: np.ndarray, nbytes: np.ndarray, t_send_s: np.ndarray,
                       t_start_s: np.ndarray, t_arrive_s: np.ndarray, attempt: np.ndarray | None = None,
                       delivered: np.ndarray | None = None) -> None:
        """Append many transfers at once; ``src``/``dst`` index :attr:`nodes`, ``direction``
        indexes :data:`DIRECTIONS`, ``epoch`` may be one number for all; ``attempt`` and
        ``delivered`` default to 1 and True (a lossless link sends each message once)."""
        n = len(step)
        cols = dict(zip(FIELDS, (epoch, step, src, dst, direction, n_values, nbytes, t_send_s, t_start_s,
                                 t_arrive_s, attempt, delivered)))
        cols["epoch"] = np.broadcast_to(np.asarray(epoch), (n,))
        if attempt is None:
            cols["attempt"] = np.ones(n, dtype=COLUMN_DTYPES["attempt"])
        if delivered is None:
            cols["delivered"] = np.ones(n, dtype=bool)
        block = {}
        for f, values in cols.items():
            arr = np.asarray(values)
            if arr.shape != (n,):
                raise ValueError(f"Ledger.extend_columns: {f} has shape {arr.shape}, expected ({n},) like step")
            block[f] = fit(arr, f) if arr.dtype != COLUMN_DTYPES[f] else arr.copy()
        for f in ("src", "dst"):
            if n and (block[f].min() < 0 or block[f].max() >= len(self._nodes)):
                raise ValueError(f"Ledger.extend_columns: {f} indices must lie in 0..{len(self._nodes) - 1} "
                                 "(the ledger's node table); build the ledger with Ledger(nodes=graph.order)")
        if n and block["direction"].max() >= len(DIRECTIONS):
            raise ValueError(f"Ledger.extend_columns: direction must index {DIRECTIONS}")
        self._flush()
        self._append(block)

    def __len__(self) -> int:
        return self._n_blocks_rows + len(self._pending)

    # ------------------------------------------------------------------ views
    @property
    def records(self) -> TransferTable:
        """Every transfer so far, as a read-only table (a snapshot: later appends do not show)."""
        return TransferTable(self.columns(), self._nodes)

    def columns(self) -> dict[str, np.ndarray]:
        """The columns, consolidated into one block (read-only arrays)."""
        self._flush()
        if len(self._blocks) != 1:
            merged = {f: np.concatenate([b[f] for b in self._blocks]) if self._blocks
                      else np.empty(0, COLUMN_DTYPES[f]) for f in FIELDS}
            for arr in merged.values():
                arr.flags.writeable = False
            self._blocks = [merged]
        return dict(self._blocks[0])

    def bytes_per_transfer(self) -> float:
        """Memory of the columns per transfer (NaN when empty)."""
        self._flush()
        held = sum(a.nbytes for b in self._blocks for a in b.values())
        return held / len(self) if len(self) else float("nan")

    # ------------------------------------------------------------------ totals
    def total_bytes(self, direction: str | None = None, epoch: int | None = None) -> int:
        """Sum of ``nbytes`` over records matching ``direction`` and ``epoch`` (None = all)."""
        cols = self.columns()
        mask = np.ones(len(cols["nbytes"]), dtype=bool)
        if direction is not None:
            mask &= cols["direction"] == DIRECTIONS.index(direction)
        if epoch is not None:
            mask &= cols["epoch"] == epoch
        return int(cols["nbytes"][mask].sum(dtype=np.int64))

    def bytes_per_link(self) -> dict[tuple[Hashable, Hashable, str], int]:
        """Bytes per (src, dst, direction), in order of first appearance."""
        return self.records.bytes_per_link()

    def write_csv(self, path: Path) -> None:
        write_records(path, self.records)

    def write_parquet(self, path: Path) -> None:
        write_parquet(path, self.records)

    # ------------------------------------------------------------------ internals
    def _flush(self) -> None:
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        for r in rows:
            for v in (r[2], r[3]):
                if v not in self._index:
                    self._index[v] = len(self._nodes)
                    self._nodes.append(v)
        self._append(encode_rows(rows, self._index))

    def _append(self, block: dict[str, np.ndarray]) -> None:
        n = len(block["step"])
        if not n:
            return
        # a column widened in one block widens in all, so consolidation keeps one dtype
        for f in FIELDS:
            wide = np.result_type(*(b[f].dtype for b in self._blocks), block[f].dtype)
            if block[f].dtype != wide:
                block[f] = block[f].astype(wide)
            for b in self._blocks:
                if b[f].dtype != wide:
                    b[f] = b[f].astype(wide)
        for arr in block.values():
            arr.flags.writeable = False
        self._blocks.append(block)
        self._n_blocks_rows += n
