"""The fast engine (learning plane) against the reference engine, the oracle.

The reference is the 0.1 per-node link-cut SimPy engine, verified against one autograd
graph and closed forms elsewhere.  Here both engines train the same seed for three steps
(batches 64, 64, 32) and must leave identical ledgers (the same transfers, sizes and
counts per (epoch, step, src, dst, direction)) and the same parameters (1e-5 relative),
on dense and spt, for every gate, codec and aggregation.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
import torch

from conftest import tiny_scenario
from inl_sim.errors import DivergedError, ScenarioError
from inl_sim.scenario import load_scenario
from inl_sim.study.setup import prepare

MODES = ("dense", "spt")
GATES = ("none", "gaussian", "gumbel")
CODECS = ("float32", "float16", "int8", "entropy_coded")
AGGREGATIONS = ("concat", "mean", "sum")

#: every (mode, gate, codec), the aggregation cycling; then every (mode, aggregation)
CASES = [(m, g, c, AGGREGATIONS[i % 3]) for i, (m, g, c) in enumerate(itertools.product(MODES, GATES, CODECS))]
CASES += [(m, "gaussian", "float32", a) for m in MODES for a in AGGREGATIONS]
#: the dithered codec defines its own gradient (to the gate's mu and sigma) and keys each
#: error's dither by where it crosses: every rate the Gaussian gate can penalise, both modes
RATES = ("kl_standard_normal", "kl_learned_prior", "aggregate_posterior")
DITHERED = [(m, "gaussian", "dithered", "concat", r) for m in MODES for r in RATES]
DITHERED += [(m, g, "dithered", "sum", "kl_standard_normal") for m in MODES for g in ("none", "gumbel")]


def _scenario(mode: str, gate: str, codec: str, aggregation: str, engine: str, **extra: object):  # type: ignore[no-untyped-def]
    raw = tiny_scenario(routing__mode=mode, gate__kind=gate, gate__beta=0.0 if gate == "none" else 0.05,
                        message__encoding=codec, message__grad_encoding=codec, model__aggregation=aggregation,
                        simulation__engine=engine, **extra)
    return load_scenario(raw)


def _batches() -> list[torch.Tensor]:
    return list(torch.randperm(160, generator=torch.Generator().manual_seed(1)).split(64))   # 64, 64, 32


def _train(mode: str, gate: str, codec: str, aggregation: str, engine: str, **extra: object):  # type: ignore[no-untyped-def]
    setup = prepare(_scenario(mode, gate, codec, aggregation, engine, **extra), 0)
    stats = setup.engine.run_epoch(0, _batches())
    return setup, stats


def _ledger_table(records) -> Counter:  # type: ignore[no-untyped-def]
    """(epoch, step, src, dst, direction, n_values, nbytes) -> count: order-free ledger identity."""
    return Counter((r.epoch, r.step, r.src, r.dst, r.direction, r.n_values, r.nbytes) for r in records)


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| of one parameter tensor.

    Element-wise ratios are not the measure: the two engines sum in different orders
    (batched matmuls vs per-node ones), and a value a quantising codec puts on a rounding
    boundary, or a near-zero gradient that Adam normalises, turns a 1e-7 difference into
    a 1e-6 one on a single small element.
    """
    return float((a.detach() - b.detach()).norm() / b.detach().norm().clamp_min(1e-12))


@pytest.mark.parametrize("mode,gate,codec,aggregation", CASES, ids=["-".join(c) for c in CASES])
def test_fast_engine_equals_the_reference_engine(mode: str, gate: str, codec: str, aggregation: str) -> None:
    fast, fast_stats = _train(mode, gate, codec, aggregation, "fast")
    ref, ref_stats = _train(mode, gate, codec, aggregation, "reference")

    fast_table, ref_table = _ledger_table(fast.ledger.records), _ledger_table(ref.ledger.records)
    assert len(ref.ledger.records) == 3 * 2 * len(ref.graph.edges)
    assert fast_table == ref_table
    _assert_same_times(fast, ref)
    if codec == "entropy_coded":   # sizes depend on the values: they must not all be equal
        assert len({r.nbytes for r in ref.ledger.records}) > 2

    worst, n_checked = 0.0, 0
    for v in ref.graph.order:
        named_fast = dict(fast.modules[v].named_parameters())
        for name, p_ref in ref.modules[v].named_parameters():
            worst = max(worst, _relative_error(named_fast[name], p_ref))
            n_checked += 1
    assert n_checked >= 4 * len(ref.graph.order)
    # int8 is a coarse per-tensor grid (absmax / 127): a 1e-7 difference in summation order
    # moves a value across a rounding boundary now and then, and Adam carries the jump on
    # (measured: 5e-8 after one step, 1e-5 to 3e-5 after three with the gumbel gate)
    assert worst <= (1e-4 if codec == "int8" else 1e-5), worst

    assert fast_stats.samples == ref_stats.samples == 160 and fast_stats.steps == ref_stats.steps == 3
    assert fast_stats.correct == ref_stats.correct
    assert math.isclose(fast_stats.loss_sum, ref_stats.loss_sum, rel_tol=1e-5)
    assert set(fast_stats.rate_nats_sum) == set(ref_stats.rate_nats_sum)
    for v, r in ref_stats.rate_nats_sum.items():
        # a plug-in MI is a difference of two entropies (~log K): float rounding is absolute there
        assert math.isclose(fast_stats.rate_nats_sum[v], r, rel_tol=1e-5, abs_tol=1e-6), v


@pytest.mark.parametrize("mode,gate,codec,aggregation,rate", DITHERED, ids=["-".join(c) for c in DITHERED])
def test_fast_engine_equals_the_reference_engine_with_dithered_messages(mode: str, gate: str, codec: str,
                                                                        aggregation: str, rate: str) -> None:
    """Same transfers; sizes equal except where a 1e-8 summation-order difference moves one
    dithered error symbol across a quantiser boundary (one 32-bit word of the coded stream)."""
    fast, _ = _train(mode, gate, codec, aggregation, "fast", gate__rate=rate)
    ref, _ = _train(mode, gate, codec, aggregation, "reference", gate__rate=rate)
    key = lambda r: (r.epoch, r.step, r.src, r.dst, r.direction)  # noqa: E731
    fast_bytes = {key(r): (r.n_values, r.nbytes) for r in fast.ledger.records}
    ref_bytes = {key(r): (r.n_values, r.nbytes) for r in ref.ledger.records}
    assert set(fast_bytes) == set(ref_bytes) and len(ref_bytes) == 3 * 2 * len(ref.graph.edges)
    assert all(fast_bytes[k][0] == ref_bytes[k][0] for k in ref_bytes)
    forward = [k for k in ref_bytes if k[4] == "forward"]
    assert all(fast_bytes[k] == ref_bytes[k] for k in forward)   # messages: coded identically
    moved = [k for k in ref_bytes if fast_bytes[k] != ref_bytes[k]]
    assert len(moved) <= 2 and all(abs(fast_bytes[k][1] - ref_bytes[k][1]) <= 4 for k in moved), moved
    assert len({r.nbytes for r in ref.ledger.records}) > 2       # sizes follow the values
    worst = max(_relative_error(dict(fast.modules[v].named_parameters())[n], p)
                for v in ref.graph.order for n, p in ref.modules[v].named_parameters())
    assert worst <= 1e-5, worst
    for v in ref.graph.order:   # the learned prior (a buffer) moves identically
        for (name, b_ref), (_, b_fast) in zip(ref.modules[v].named_buffers(), fast.modules[v].named_buffers()):
            torch.testing.assert_close(b_fast, b_ref, rtol=1e-5, atol=1e-6)


def test_gradients_without_updates_equal_the_reference_and_hard_gumbel_per_node_beta() -> None:
    """apply_updates=False: each module holds the gradient of its own parameters (per-node beta, hard gate)."""
    extra = {"gate__node_beta": {"3": 0.5, "5": 0.0}, "gate__hard": True, "gate__temperature": 0.5}
    setups = {}
    for engine in ("fast", "reference"):
        sc = _scenario("dense", "gumbel", "float32", "sum", engine, **extra)
        setups[engine] = prepare(sc, 0, apply_updates=False)
        setups[engine].engine.run_epoch(0, [torch.arange(64)])
    for v in setups["reference"].graph.order:
        named_fast = dict(setups["fast"].modules[v].named_parameters())
        for name, p_ref in setups["reference"].modules[v].named_parameters():
            assert p_ref.grad is not None
            torch.testing.assert_close(named_fast[name].grad, p_ref.grad, rtol=1e-5, atol=1e-7)


def test_module_parameters_follow_the_stacked_ones_after_training() -> None:
    """The modules evaluation reads are the trained ones: a full run's accuracy equals the reference's."""
    from inl_sim.study.training import evaluate, train
    results = {}
    for engine in ("fast", "reference"):
        setup = prepare(_scenario("dense", "gaussian", "float32", "concat", engine), 0)
        history = train(setup)
        results[engine] = (history[-1]["train_loss"], evaluate(setup)["accuracy"])
    assert results["fast"][1] == results["reference"][1]
    assert math.isclose(results["fast"][0], results["reference"][0], rel_tol=1e-5)


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_a_diverging_run_raises_diverged_error_naming_epoch_and_step(engine: str) -> None:
    sc = _scenario("spt", "none", "float32", "concat", engine, training__lr=1.0e30)
    setup = prepare(sc, 0)
    with pytest.raises(DivergedError) as info:
        setup.engine.run_epoch(0, _batches())
    err = info.value
    assert err.epoch == 0 and err.step >= 1     # step 0 is computed from the finite initial weights
    assert err.node is None or err.node in setup.graph.order
    assert "diverged" in str(err) and "\n" not in str(err)


def test_both_engines_name_the_same_diverging_step_and_node() -> None:
    found = []
    for engine in ("fast", "reference"):
        setup = prepare(_scenario("dense", "gaussian", "float32", "concat", engine, training__lr=1.0e30), 0)
        with pytest.raises(DivergedError) as info:
            setup.engine.run_epoch(0, _batches())
        found.append((info.value.epoch, info.value.step, info.value.node))
    assert found[0] == found[1]


def test_cuda_asked_for_where_absent_is_a_scenario_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    sc = load_scenario(tiny_scenario(simulation__device="cuda"))
    with pytest.raises(ScenarioError, match=r"simulation\.device: 'cuda'.*simulation\.device: cpu"):
        prepare(sc, 0)


def test_unknown_engine_is_a_scenario_error() -> None:
    with pytest.raises(ScenarioError, match=r"simulation\.engine: 'slow' is not one of"):
        load_scenario(tiny_scenario(simulation__engine="slow"))


def test_summary_records_engine_and_device() -> None:
    import inl_sim
    for engine in ("fast", "reference"):
        summary = inl_sim.run(tiny_scenario(simulation__engine=engine), 0).summary()
        assert (summary["engine"], summary["device"]) == (engine, "cpu")


def _assert_same_times(fast, ref) -> None:  # type: ignore[no-untyped-def]
    """The network plane times the fast engine's traffic as the SimPy engine timed its own (1e-12)."""
    key = lambda r: (r.epoch, r.step, r.src, r.dst, r.direction)  # noqa: E731
    times_fast = {key(r): (r.t_send_s, r.t_start_s, r.t_arrive_s) for r in fast.ledger.records}
    times_ref = {key(r): (r.t_send_s, r.t_start_s, r.t_arrive_s) for r in ref.ledger.records}
    assert times_fast.keys() == times_ref.keys()
    for k, t in times_ref.items():
        np.testing.assert_allclose(times_fast[k], t, rtol=1e-12, atol=0, err_msg=str(k))
    assert math.isclose(fast.engine.sim_time_s, ref.engine.sim_time_s, rel_tol=1e-12)
    assert ref.engine.sim_time_s > 0


@pytest.mark.parametrize("gate", ["none", "gaussian", "gumbel"])
def test_every_shipped_gate_is_verified_and_batched(gate: str) -> None:
    """A shipped gate whose code changed since the equivalence tests last held must fail here,
    not fall back to the per-node path quietly (the gumbel gate once did, after its sampled
    channel was added): re-run this file and update ``stacked._VERIFIED``."""
    from inl_sim.learning.gating import GATES
    from inl_sim.sim import stacked
    stacked._verified.cache_clear()
    if gate != "none":
        assert stacked._verified(GATES[gate]), f"update stacked._VERIFIED for {GATES[gate].__name__}"
    setup = prepare(_scenario("dense", gate, "float32", "concat", "fast"), 0)
    assert not any(isinstance(g, stacked.SingleGroup) for g in setup.engine.groups)


@pytest.mark.parametrize("gate,codec", [("gaussian", "entropy_coded"), ("gumbel", "int8")])
def test_unverified_gates_run_per_node_and_still_equal_the_reference(gate: str, codec: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A gate the batched path was not checked against runs through its own module, node by node."""
    from inl_sim.sim import stacked
    monkeypatch.setattr(stacked, "_VERIFIED", {})
    stacked._verified.cache_clear()
    try:
        fast, _ = _train("dense", gate, codec, "concat", "fast")
    finally:
        stacked._verified.cache_clear()
    assert sum(isinstance(g, stacked.SingleGroup) for g in fast.engine.groups) == len(fast.graph.order) - 1
    ref, _ = _train("dense", gate, codec, "concat", "reference")
    assert _ledger_table(fast.ledger.records) == _ledger_table(ref.ledger.records)
    for v in ref.graph.order:
        for (name, p), (_, q) in zip(fast.modules[v].named_parameters(), ref.modules[v].named_parameters()):
            assert _relative_error(p, q) <= (1e-4 if codec == "int8" else 1e-5), (v, name)


def test_a_diverged_epoch_keeps_the_records_of_the_steps_that_completed() -> None:
    """Both engines keep what crossed before the step that diverged: every transfer of the
    completed steps, equal; the reference also holds that step's forward messages."""
    ledgers, steps = {}, {}
    for engine in ("fast", "reference"):
        setup = prepare(_scenario("dense", "gaussian", "float32", "concat", engine, training__lr=1.0e30), 0)
        with pytest.raises(DivergedError) as info:
            setup.engine.run_epoch(0, _batches())
        ledgers[engine], steps[engine] = _ledger_table(setup.ledger.records), info.value.step
        n_edges = len(setup.graph.edges)
    bad = steps["fast"]
    assert bad == steps["reference"] and bad >= 1
    done = lambda table: Counter({k: c for k, c in table.items() if k[1] < bad})  # noqa: E731
    assert done(ledgers["fast"]) == done(ledgers["reference"])
    assert sum(done(ledgers["fast"]).values()) == bad * 2 * n_edges
    assert all(k[1] < bad for k in ledgers["fast"])
    late = [k for k in ledgers["reference"] if k[1] == bad]
    assert late and all(k[4] == "forward" for k in late)


@pytest.mark.parametrize("mode,rate", [(m, r) for m in MODES for r in RATES])
def test_batched_gaussian_gates_with_every_rate_equal_the_reference(mode: str, rate: str) -> None:
    """The batched path keeps the Gaussian gates' learned priors stacked (no per-node fallback):
    same ledger, parameters within 1e-5 and the same priors after three steps."""
    from inl_sim.sim.stacked import StackedGroup
    fast, fast_stats = _train(mode, "gaussian", "float32", "concat", "fast", gate__rate=rate)
    ref, ref_stats = _train(mode, "gaussian", "float32", "concat", "reference", gate__rate=rate)
    gaussian_groups = [g for g in fast.engine.groups if g.has_rate]
    assert gaussian_groups and all(isinstance(g, StackedGroup) for g in gaussian_groups)
    assert _ledger_table(fast.ledger.records) == _ledger_table(ref.ledger.records)
    worst = max(_relative_error(dict(fast.modules[v].named_parameters())[n], p)
                for v in ref.graph.order for n, p in ref.modules[v].named_parameters())
    assert worst <= 1e-5, worst
    for v in ref.graph.order:
        for (_, b_ref), (_, b_fast) in zip(ref.modules[v].named_buffers(), fast.modules[v].named_buffers()):
            assert not torch.equal(b_ref, torch.zeros_like(b_ref))     # the prior moved
            torch.testing.assert_close(b_fast, b_ref, rtol=1e-5, atol=1e-6)
    for v, r in ref_stats.rate_nats_sum.items():
        assert math.isclose(fast_stats.rate_nats_sum[v], r, rel_tol=1e-5, abs_tol=1e-6), v
