"""One seed derives every random stream of a run, and a run touches no global RNG.

Same seed -> byte-identical records and identical summary numbers (wall time aside);
another seed -> another outcome; torch's, numpy's and Python's global RNG states are
what they were before the run.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import inl_sim
from inl_sim.scenario import load_scenario

from conftest import tiny_scenario

TIMING_KEYS = {"wall_time_s"}


def _run(tmp: Path, seed: int, **dotted: object) -> Path:
    out = tmp / f"seed{seed}"
    inl_sim.run(load_scenario(tiny_scenario(**dotted)), seed, out_dir=out)
    return out


def _summary(folder: Path) -> dict:
    return {k: v for k, v in json.loads((folder / "summary.json").read_text()).items() if k not in TIMING_KEYS}


@pytest.mark.parametrize("gate", ["none", "gaussian", "gumbel"])
def test_same_seed_same_numbers_and_records(tmp_path: Path, gate: str) -> None:
    a = _run(tmp_path / "a", 3, gate__kind=gate, routing__mode="dense")
    b = _run(tmp_path / "b", 3, gate__kind=gate, routing__mode="dense")
    assert _summary(a) == _summary(b)
    assert (a / "transfers.csv").read_bytes() == (b / "transfers.csv").read_bytes()
    history_a, history_b = (json.loads((f / "history.json").read_text()) for f in (a, b))
    for row_a, row_b in zip(history_a, history_b, strict=True):
        row_a.pop("wall_time_s"), row_b.pop("wall_time_s")
        assert row_a == row_b


def test_different_seeds_differ(tmp_path: Path) -> None:
    a, b = _summary(_run(tmp_path, 0)), _summary(_run(tmp_path, 1))
    assert (a["accuracy"], a["test_loss"]) != (b["accuracy"], b["test_loss"])
    assert a["seed"] == 0 and b["seed"] == 1


def test_a_run_leaves_global_rng_state_alone() -> None:
    torch.manual_seed(1234)
    np.random.seed(1234)
    random.seed(1234)
    torch_before, numpy_before, python_before = torch.get_rng_state(), np.random.get_state(), random.getstate()
    inl_sim.run(load_scenario(tiny_scenario(gate={"kind": "gaussian"}, routing={"mode": "dense"})), 5)
    assert torch.equal(torch.get_rng_state(), torch_before)
    numpy_after = np.random.get_state()
    assert numpy_after[0] == numpy_before[0] and np.array_equal(numpy_after[1], numpy_before[1])
    assert numpy_after[2:] == numpy_before[2:]
    assert random.getstate() == python_before


def test_global_rng_state_does_not_leak_into_a_run() -> None:
    """Whatever the global seeds, the run's numbers are the same."""
    sc = load_scenario(tiny_scenario(gate={"kind": "gaussian"}))
    torch.manual_seed(1)
    np.random.seed(1)
    first = inl_sim.run(sc, 2)
    torch.manual_seed(99)
    np.random.seed(99)
    torch.rand(17)
    second = inl_sim.run(sc, 2)
    assert (first.accuracy, first.test_loss) == (second.accuracy, second.test_loss)
    assert first.transfers == second.transfers
