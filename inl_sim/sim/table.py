"""Transfer records as columns: the :class:`Transfer` record and the :class:`TransferTable` view.

A run moves millions of messages, so the ledger keeps them as numpy columns (47 bytes
per transfer) rather than Python objects.  :class:`TransferTable` is how users see them:
``len()``, iteration and integer indexing give :class:`Transfer` namedtuples with the
original node ids and direction names; slicing or a mask gives a smaller table;
``pandas.DataFrame(table)`` gives one row per transfer with the :data:`FIELDS` as
columns (pandas reads the namedtuples), and :meth:`TransferTable.to_pandas` the same
DataFrame straight from the columns, several times faster for millions of rows;
:meth:`TransferTable.to_numpy` gives a structured array, :meth:`TransferTable.to_arrow`
an Arrow table (Parquet).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Hashable, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

__all__ = ["Transfer", "FIELDS", "DIRECTIONS", "COLUMN_DTYPES", "TransferTable", "write_records",
           "write_parquet"]

NodeId = Hashable
DIRECTIONS = ("forward", "backward", "parameters", "raw_data")

#: Compact column types (47 bytes per transfer, issue #7's limit is 48); an integer column
#: is widened to int64 the first time a value does not fit (e.g. a message over 4 GiB,
#: epoch or step 65,536, attempt 256).
COLUMN_DTYPES: dict[str, np.dtype] = {
    "epoch": np.dtype(np.uint16), "step": np.dtype(np.uint16), "src": np.dtype(np.int32),
    "dst": np.dtype(np.int32), "direction": np.dtype(np.uint8), "n_values": np.dtype(np.uint32),
    "nbytes": np.dtype(np.uint32), "t_send_s": np.dtype(np.float64), "t_start_s": np.dtype(np.float64),
    "t_arrive_s": np.dtype(np.float64), "attempt": np.dtype(np.uint8), "delivered": np.dtype(np.bool_),
}
_ROWS_PER_BATCH = 65_536  # iteration and CSV writing decode this many rows at a time


class Transfer(NamedTuple):
    """One message over one directed link.

    ``t_send_s``: when the sender handed it to the link; ``t_start_s``: when the link
    began serialising it (later if the channel was busy); ``t_arrive_s``: when the last
    bit reached the receiver.  ``nbytes`` is the size of what actually crossed.
    ``attempt`` counts transmissions of the same message (1 on a lossless link) and
    ``delivered`` says whether this attempt got through: a message lost twice then
    delivered is three records, attempts 1, 2, 3, delivered False, False, True
    (:mod:`inl_sim.sim.faults`).  Bytes sent sum over attempts; bytes delivered sum over
    delivered records.
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
    attempt: int = 1
    delivered: bool = True


FIELDS = Transfer._fields


class TransferTable:
    """A read-only columnar view of transfers; ``src``/``dst`` columns index ``nodes``.

    It defines no ``__array__``: pandas would then build one column of records instead
    of reading the namedtuples' field names.
    """

    __slots__ = ("columns", "nodes")

    def __init__(self, columns: dict[str, np.ndarray], nodes: Sequence[NodeId]) -> None:
        self.columns, self.nodes = columns, tuple(nodes)

    @classmethod
    def from_records(cls, records: Iterable[Transfer]) -> "TransferTable":
        """A table from Transfer-like tuples (node ids and direction names)."""
        rows = list(records)
        nodes: dict[NodeId, int] = {}
        for r in rows:
            nodes.setdefault(r[2], len(nodes))
            nodes.setdefault(r[3], len(nodes))
        return cls(encode_rows(rows, nodes), tuple(nodes))

    def __len__(self) -> int:
        return len(self.columns["step"])

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer)):
            n = len(self)
            if not -n <= key < n:
                raise IndexError(f"transfer {key} out of range for a table of {n}")
            return next(self._decode(slice(int(key) % n, int(key) % n + 1)))
        return TransferTable({k: c[key] for k, c in self.columns.items()}, self.nodes)

    def __iter__(self) -> Iterator[Transfer]:
        for lo in range(0, len(self), _ROWS_PER_BATCH):
            yield from self._decode(slice(lo, lo + _ROWS_PER_BATCH))

    def _decode(self, rows: slice) -> Iterator[Transfer]:
        nodes = _object_array(self.nodes)  # the ids themselves, whatever their type
        cols = {k: (nodes[c[rows]] if k in ("src", "dst") else _DIRECTION_OBJECTS[c[rows]]
                    if k == "direction" else c[rows]).tolist() for k, c in self.columns.items()}
        return map(Transfer._make, zip(*(cols[f] for f in FIELDS)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TransferTable):
            if len(self) != len(other):
                return False
            if self.nodes == other.nodes:
                return all(np.array_equal(c, other.columns[k]) for k, c in self.columns.items())
        if isinstance(other, (TransferTable, list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TransferTable({len(self)} transfers over {len(self.nodes)} nodes)"

    @property
    def nbytes(self) -> int:
        """Memory held by the columns (the node table aside)."""
        return sum(c.nbytes for c in self.columns.values())

    def bytes_per_link(self) -> dict[tuple[NodeId, NodeId, str], int]:
        """Bytes per (src, dst, direction), in order of first appearance (numpy, no record loop)."""
        cols, n = self.columns, max(len(self.nodes), 1)
        key = (cols["src"].astype(np.int64) * n + cols["dst"]) * len(DIRECTIONS) + cols["direction"]
        uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        sums = np.zeros(len(uniq), dtype=np.int64)
        np.add.at(sums, inverse, cols["nbytes"].astype(np.int64))
        out = {}
        for k in np.argsort(first, kind="stable").tolist():
            link, d = divmod(int(uniq[k]), len(DIRECTIONS))
            s, t = divmod(link, n)
            out[(self.nodes[s], self.nodes[t], DIRECTIONS[d])] = int(sums[k])
        return out

    def node_ids(self, column: str) -> np.ndarray:
        """The ``src`` or ``dst`` column as node ids (int64 if every id is an int, else objects)."""
        return _node_array(self.nodes)[self.columns[column]]

    def direction_names(self) -> np.ndarray:
        return np.asarray(DIRECTIONS)[self.columns["direction"]]

    def to_numpy(self) -> np.ndarray:
        """A structured array, one record per transfer, fields named as :data:`FIELDS`."""
        decoded = {**self.columns, "src": self.node_ids("src"), "dst": self.node_ids("dst"),
                   "direction": self.direction_names()}
        out = np.empty(len(self), dtype=[(f, decoded[f].dtype) for f in FIELDS])
        for f in FIELDS:
            out[f] = decoded[f]
        return out

    def to_pandas(self) -> Any:
        """A pandas DataFrame, one row per transfer (pandas is imported lazily)."""
        import pandas as pd
        return pd.DataFrame({f: c for f, c in zip(FIELDS, self._decoded_columns())})

    def to_arrow(self) -> Any:
        """A pyarrow Table with the :data:`FIELDS` as columns; direction dictionary-encoded."""
        import pyarrow as pa
        cols = dict(zip(FIELDS, self._decoded_columns()))
        for f in ("src", "dst"):  # mixed or non-integer node ids are written as text
            if cols[f].dtype == object:
                cols[f] = cols[f].astype(str)
        cols["direction"] = pa.DictionaryArray.from_arrays(
            pa.array(self.columns["direction"].astype(np.int8)), pa.array(DIRECTIONS))
        return pa.table(cols)

    def _decoded_columns(self) -> list[np.ndarray]:
        return [self.node_ids(f) if f in ("src", "dst") else
                self.direction_names() if f == "direction" else self.columns[f] for f in FIELDS]


def _node_array(nodes: Sequence[NodeId]) -> np.ndarray:
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in nodes):
        return np.asarray(nodes, dtype=np.int64)
    return _object_array(nodes)


def _object_array(values: Sequence[object]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):  # one by one: a tuple id stays one element
        out[i] = v
    return out


_DIRECTION_OBJECTS = _object_array(DIRECTIONS)


def encode_rows(rows: Sequence[Sequence], nodes: dict[NodeId, int]) -> dict[str, np.ndarray]:
    """Columns (compact dtypes, widened where needed) from Transfer-like tuples."""
    cols = list(zip(*rows)) if rows else [()] * len(FIELDS)
    defaults = Transfer._field_defaults  # rows of the 10 fault-free fields: one attempt, delivered
    cols += [(defaults[f],) * len(rows) for f in FIELDS[len(cols):]]
    out = {}
    for f, values in zip(FIELDS, cols):
        if f in ("src", "dst"):
            values = [nodes[v] for v in values]
        elif f == "direction":
            values = [DIRECTIONS.index(d) for d in values]
        kind = np.float64 if f.startswith("t_") else np.bool_ if f == "delivered" else np.int64
        out[f] = fit(np.asarray(values, dtype=kind), f)
    return out


def fit(values: np.ndarray, field: str) -> np.ndarray:
    """``values`` in the field's compact dtype, or int64 where they do not fit it."""
    dtype = COLUMN_DTYPES[field]
    if dtype.kind in "iu" and len(values):
        info = np.iinfo(dtype)
        if values.min() < info.min or values.max() > info.max:
            return values.astype(np.int64)
    return values.astype(dtype, copy=False)


def write_records(path: Path, records: Iterable[Transfer]) -> None:
    """CSV with one header line and one row per transfer."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(FIELDS)
        writer.writerows(records)


def write_parquet(path: Path, records: Iterable[Transfer]) -> None:
    """Parquet (pyarrow, zstd) with one row per transfer and the :data:`FIELDS` as columns."""
    import pyarrow.parquet as pq
    table = records if isinstance(records, TransferTable) else TransferTable.from_records(records)
    pq.write_table(table.to_arrow(), path, compression="zstd")
