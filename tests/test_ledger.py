"""Tests of the columnar ledger (inl_sim.sim.accounting, inl_sim.sim.table) and metrics on it.

Oracles: plain Python sums and sorts over the same records kept as a list of
:class:`Transfer` tuples (the 0.1 ledger), byte counts from numpy's own ``itemsize``,
pandas and pyarrow reading what we wrote, and the CSV written beside the Parquet file.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import inl_sim
from inl_sim.scenario import load_scenario
from inl_sim.sim import metrics
from inl_sim.sim.accounting import DIRECTIONS, FIELDS, Ledger, Transfer, TransferTable

from conftest import tiny_scenario

pd = pytest.importorskip("pandas")
pq = pytest.importorskip("pyarrow.parquet")


def random_records(n: int, seed: int, nodes: list) -> list[Transfer]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        src, dst = rng.choice(len(nodes), size=2, replace=False)
        t = float(rng.random())
        out.append(Transfer(int(rng.integers(0, 3)), int(rng.integers(0, 5)), nodes[src], nodes[dst],
                            DIRECTIONS[int(rng.integers(0, 4))], int(rng.integers(0, 999)),
                            int(rng.integers(0, 9999)), t, t + float(rng.random()), t + 2.0))
    return out


def columns_of(records: list[Transfer], nodes: list) -> list:
    index = {v: i for i, v in enumerate(nodes)}
    return [np.array([r.epoch for r in records]), *(np.array(c) for c in zip(*[
        (r.step, index[r.src], index[r.dst], DIRECTIONS.index(r.direction), r.n_values, r.nbytes,
         r.t_send_s, r.t_start_s, r.t_arrive_s) for r in records]))]


NODES = [0, 7, 3, 12, 5]
MIXED = ["fusion", 1, "relay-a", 2.5, ("x", 1)]


@pytest.mark.parametrize("nodes", [NODES, MIXED])
def test_add_and_extend_give_the_same_records_in_order(nodes: list) -> None:
    first, second, third = (random_records(n, s, nodes) for n, s in ((10, 0), (20_000, 1), (5, 2)))
    ledger = Ledger(nodes=nodes)
    for r in first:
        ledger.add(r)
    ledger.extend_columns(*columns_of(second, nodes))
    for r in third:
        ledger.add(r)
    expected = first + second + third
    table = ledger.records
    assert len(ledger) == len(table) == len(expected)
    assert list(table) == expected and table == expected
    assert table[0] == expected[0] and table[-1] == expected[-1] and table[12_345] == expected[12_345]
    assert type(table[3].src) is type(expected[3].src)  # node ids come back as given
    assert list(table[5:17]) == expected[5:17]
    mask = table.columns["direction"] == 1
    assert list(table[mask]) == [r for r in expected if r.direction == "backward"]
    with pytest.raises(IndexError):
        table[len(expected)]


def test_records_is_a_snapshot_and_read_only() -> None:
    ledger = Ledger(nodes=NODES)
    rows = random_records(50, 3, NODES)
    for r in rows[:30]:
        ledger.add(r)
    snap = ledger.records
    for r in rows[30:]:
        ledger.add(r)
    assert len(snap) == 30 and list(snap) == rows[:30] and list(ledger.records) == rows
    with pytest.raises(ValueError):
        snap.columns["nbytes"][0] = 1


def test_at_most_48_bytes_per_transfer() -> None:
    """47 bytes: the twelve transfer fields, attempt (uint8) and delivered (bool) included
    (step is uint16, widened when an epoch has more than 65,535 steps)."""
    ledger = Ledger(nodes=NODES)
    ledger.extend_columns(*columns_of(random_records(3000, 4, NODES), NODES))
    for r in random_records(9000, 5, NODES):
        ledger.add(r)
    per_row = sum(np.dtype(c.dtype).itemsize for c in ledger.columns().values())
    assert per_row == 47 and ledger.bytes_per_transfer() == 47.0
    assert ledger.records.nbytes == 47 * 12_000


def test_columns_widen_when_values_do_not_fit() -> None:
    ledger = Ledger(nodes=[0, 1])
    ledger.add(Transfer(0, 0, 1, 0, "forward", 4, 16, 0.0, 0.0, 1.0))
    big = Transfer(70_000, 70_000, 0, 1, "backward", 2 ** 33, 2 ** 35, 1.0, 1.0, 2.0)
    ledger.add(big)
    assert ledger.records[1] == big
    assert all(ledger.columns()[f].dtype == np.int64 for f in ("nbytes", "epoch", "step"))
    assert ledger.total_bytes() == 16 + 2 ** 35


def test_totals_equal_python_sums() -> None:
    records = random_records(5000, 6, MIXED)
    ledger = Ledger()
    for r in records:
        ledger.add(r)
    for direction in (None, *DIRECTIONS):
        for epoch in (None, 0, 2):
            assert ledger.total_bytes(direction, epoch) == sum(
                r.nbytes for r in records
                if (direction is None or r.direction == direction) and (epoch is None or r.epoch == epoch))
    expected: dict = {}
    for r in records:
        expected[(r.src, r.dst, r.direction)] = expected.get((r.src, r.dst, r.direction), 0) + r.nbytes
    got = ledger.bytes_per_link()
    assert got == expected and list(got) == list(expected)  # first-appearance order too


@pytest.mark.parametrize("nodes", [NODES, MIXED])
def test_metrics_on_columns_equal_metrics_on_records(nodes: list) -> None:
    records = random_records(4000, 7, nodes)
    table = TransferTable.from_records(records)
    for fn in (metrics.exchange_bytes, metrics.bytes_by_epoch, metrics.bytes_by_link):
        on_table, on_list = fn(table), fn(iter(records))
        assert on_table == on_list and list(on_table) == list(on_list)
    # oracle for the list path, spelled out: every direction, and the total over all of them
    # (federated "parameters" and centralised "raw_data" are training traffic too; INL has none)
    per = {d: sum(r.nbytes for r in records if r.direction == d) for d in DIRECTIONS}
    assert metrics.exchange_bytes(table) == {**per, "total": sum(per.values())}
    for epoch, step in ((0, 0), (2, 4), (9, 9)):
        want = sorted((r for r in records if r.epoch == epoch and r.step == step), key=lambda r: r.t_start_s)
        assert metrics.step_timeline(table, epoch, step) == want


@pytest.mark.parametrize("nodes", [NODES, MIXED])
def test_dataframe_has_one_row_per_transfer(nodes: list) -> None:
    records = random_records(300, 8, nodes)
    table = TransferTable.from_records(records)
    expected = pd.DataFrame.from_records(records, columns=FIELDS)
    for df in (pd.DataFrame(table), table.to_pandas()):
        assert list(df.columns) == list(FIELDS) and len(df) == len(records)
        for f in FIELDS:
            assert df[f].tolist() == expected[f].tolist(), f
    arr = table.to_numpy()
    assert arr.dtype.names == FIELDS and arr["nbytes"].tolist() == [r.nbytes for r in records]


def test_parquet_round_trip_and_csv(tmp_path: Path) -> None:
    records = random_records(500, 9, NODES)
    ledger = Ledger(nodes=NODES)
    for r in records:
        ledger.add(r)
    ledger.write_parquet(tmp_path / "t.parquet")
    ledger.write_csv(tmp_path / "t.csv")
    back = pq.read_table(tmp_path / "t.parquet").to_pandas()
    assert list(back.columns) == list(FIELDS)
    assert [Transfer(*row) for row in back.itertuples(index=False)] == records
    with open(tmp_path / "t.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == list(FIELDS) and rows[1:] == [[str(x) for x in r] for r in records]


def test_run_folder_has_parquet_equal_to_csv(tmp_path: Path) -> None:
    res = inl_sim.run(load_scenario(tiny_scenario(routing={"mode": "dense"})), 0, out_dir=tmp_path / "run")
    assert isinstance(res.transfers, TransferTable)
    parquet = pq.read_table(tmp_path / "run" / "transfers.parquet").to_pandas()
    text = pd.read_csv(tmp_path / "run" / "transfers.csv")
    assert len(parquet) == len(text) == len(res.transfers) == res.summary()["n_transfers"]
    for f in FIELDS:
        assert parquet[f].astype(str).tolist() == text[f].astype(str).tolist(), f
    assert int(parquet["nbytes"].sum()) == res.exchange_bytes
