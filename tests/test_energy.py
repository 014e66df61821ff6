"""Energy from ledger records and node compute, against closed forms and hand sums."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from inl_sim.errors import ScenarioError
from inl_sim.scenario import load_scenario
from inl_sim.scenario.spec import EnergySpec
from inl_sim.sim.accounting import Transfer
from inl_sim.sim.energy import run_energy, training_flops

from conftest import explicit_topology, tiny_scenario

SPEC = EnergySpec(tx_j_per_bit=2e-9, rx_j_per_bit=1e-9, j_per_flop=1e-12, idle_w=0.5)


def _chain_records() -> list[Transfer]:
    """Chain 2 -> 1 -> 0 (fusion 0): 100 bytes forward per hop, 60 back, twice."""
    out = []
    for step in range(2):
        out += [Transfer(0, step, 2, 1, "forward", 25, 100, 0, 0, 0), Transfer(0, step, 1, 0, "forward", 25, 100, 0, 0, 0),
                Transfer(0, step, 0, 1, "backward", 15, 60, 0, 0, 0), Transfer(0, step, 1, 2, "backward", 15, 60, 0, 0, 0)]
    return out


def test_chain_radio_energy_is_bytes_times_8_times_j_per_bit() -> None:
    e = run_energy(_chain_records(), {}, SPEC, nodes=[0, 1, 2], sim_time_s=4.0)
    assert e.link_j[(2, 1)]["tx_j"] == pytest.approx(2 * 100 * 8 * 2e-9)
    assert e.link_j[(1, 2)]["rx_j"] == pytest.approx(2 * 60 * 8 * 1e-9)
    # node 1 relays: sends 100 up and 60 down per step, receives the same
    assert e.node_j[1]["tx"] == pytest.approx(2 * 160 * 8 * 2e-9)
    assert e.node_j[1]["rx"] == pytest.approx(2 * 160 * 8 * 1e-9)
    assert e.node_j[0]["tx"] == pytest.approx(2 * 60 * 8 * 2e-9) and e.node_j[2]["rx"] == pytest.approx(2 * 60 * 8 * 1e-9)
    total_bits = sum(r.nbytes for r in _chain_records()) * 8
    assert e.total("tx") == pytest.approx(total_bits * 2e-9) and e.total("rx") == pytest.approx(total_bits * 1e-9)
    assert e.total("idle") == pytest.approx(3 * 0.5 * 4.0)
    assert e.total() == pytest.approx(total_bits * 3e-9 + 6.0)


def test_columns_and_records_agree() -> None:
    recs = _chain_records()
    cols = SimpleNamespace(src=np.array([r.src for r in recs]), dst=np.array([r.dst for r in recs]),
                           nbytes=np.array([r.nbytes for r in recs]))
    a = run_energy(recs, {}, SPEC, nodes=[0, 1, 2])
    b = run_energy(cols, {}, SPEC, nodes=[0, 1, 2])
    assert a.summary() == b.summary()


def test_compute_energy_is_three_forward_passes() -> None:
    flops = training_flops({0: 100, 1: 40, 2: 10}, samples=1000)
    assert flops == {0: 300_000.0, 1: 120_000.0, 2: 30_000.0}
    e = run_energy([], flops, SPEC, nodes=[0, 1, 2, 3])
    assert e.node_j[3]["compute"] == 0.0
    assert e.total("compute") == pytest.approx(450_000 * 1e-12)


def test_off_coefficients_give_zero() -> None:
    e = run_energy(_chain_records(), {0: 1e9}, EnergySpec(0.0, 0.0, 0.0, 0.0), nodes=[0, 1, 2], sim_time_s=9.0)
    assert e.total() == 0.0


@pytest.mark.parametrize("key", ["tx_j_per_bit", "rx_j_per_bit", "j_per_flop", "idle_w"])
def test_negative_coefficients_rejected(key: str) -> None:
    with pytest.raises(ScenarioError, match=f"energy.{key}"):
        load_scenario(tiny_scenario(**{f"energy__{key}": -1.0}))


def test_run_reports_energy_from_its_records(tmp_path) -> None:
    from inl_sim.report.energy import energy_map
    from inl_sim.report.html import load_results
    from inl_sim.study.experiment import prepare, run

    topo = explicit_topology([[0, 1], [1, 2], [1, 3]], fusion=0, sensors=[2, 3])
    raw = tiny_scenario(topo, energy={"tx_j_per_bit": 3e-9, "rx_j_per_bit": 1e-9, "j_per_flop": 2e-12,
                                      "idle_w": 0.25})
    res = run(raw, out_dir=tmp_path / "run")
    s = res.summary()
    bits = 8 * sum(r.nbytes for r in res.transfers)
    assert s["energy_tx_j"] == pytest.approx(bits * 3e-9) and s["energy_rx_j"] == pytest.approx(bits * 1e-9)
    modules = prepare(load_scenario(raw), 0).modules  # the same modules, rebuilt from the seed
    n_train, epochs = 256, 1
    expected = sum(m.flops_per_sample() for m in modules.values()) * 3 * n_train * epochs * 2e-12
    assert s["energy_compute_j"] == pytest.approx(expected)
    assert s["energy_j"] == pytest.approx(bits * 4e-9 + expected + 4 * 0.25 * res.sim_time_s)
    saved = json.loads((tmp_path / "run" / "energy.json").read_text())
    assert saved["totals"]["energy_j"] == pytest.approx(s["energy_j"])
    emap = energy_map(load_results(tmp_path / "run"))
    (method,) = emap
    assert sum(emap[method]["nodes"].values()) == pytest.approx(s["energy_j"])
    assert emap[method]["links"][("1", "2")] == pytest.approx(res.energy.link_j[(1, 2)]["tx_j"]
                                                            + res.energy.link_j[(2, 1)]["tx_j"])


def test_energy_of_the_columnar_ledger_equals_that_of_its_records() -> None:
    """The numpy path (a TransferTable) and the record-by-record path give the same joules."""
    from inl_sim.scenario.spec import EnergySpec
    from inl_sim.sim.energy import run_energy
    from inl_sim.sim.table import Transfer, TransferTable
    rows = [Transfer(0, s, u, v, d, 8, nb, 0.0, 0.0, 0.0) for s, (u, v, d, nb) in enumerate(
        [(3, 1, "forward", 100), ("a", 1, "forward", 7), (1, 3, "backward", 40), (3, 1, "forward", 1)])]
    spec = EnergySpec(tx_j_per_bit=2.0, rx_j_per_bit=3.0, j_per_flop=0.0)
    table, listed = (run_energy(r, {}, spec, nodes=[1, 3, "a"]) for r in (TransferTable.from_records(rows), rows))
    assert table.link_j == listed.link_j and list(table.link_j) == [(3, 1), ("a", 1), (1, 3)]
    assert table.link_j[(3, 1)]["bits"] == 101 * 8 and table.node_j == listed.node_j
