"""The learning plane's flat parameter buffer against per-tensor optimisers and autograd."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_scenario
from inl_sim.scenario import load_scenario
from inl_sim.sim.flat import FlatParameters
from inl_sim.study.setup import prepare

SHAPES = [(3, 4, 5), (3, 4), (2, 7), (1,), (6, 2, 2)]


def _tensors(seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen) for s in SHAPES]


def _loss(params: list[torch.Tensor], step: int) -> torch.Tensor:
    """A loss that touches every element differently (and one tensor twice)."""
    total = torch.zeros(())
    for k, p in enumerate(params):
        total = total + ((p - 0.1 * (k + step)) ** 2).sum() * (k + 1) + torch.sin(p).sum()
    return total + (params[0] * params[0].detach().flip(-1)).sum()


@pytest.mark.parametrize("kind, kw", [("adam", {"lr": 3e-3}), ("adam", {"lr": 1e-2, "weight_decay": 0.1}),
                                      ("sgd", {"lr": 1e-2}), ("sgd", {"lr": 1e-2, "momentum": 0.9})])
def test_stepping_the_flat_buffer_equals_stepping_each_tensor(kind: str, kw: dict) -> None:
    """Oracle: the same optimiser over the separate tensors (torch's per-tensor loop, as the
    reference engine's per-node optimisers): the same kernels per element, so bit for bit."""
    cls = torch.optim.Adam if kind == "adam" else torch.optim.SGD
    ref = [torch.nn.Parameter(t) for t in _tensors(0)]
    flat = FlatParameters([torch.nn.Parameter(t) for t in _tensors(0)])
    opt_ref = cls(ref, foreach=False, **kw)
    opt_flat = cls([flat.flat], foreach=False, **kw)
    for step in range(5):
        opt_ref.zero_grad(set_to_none=True)
        _loss(ref, step).backward()
        opt_ref.step()
        flat.zero_grad()
        _loss(flat.views, step).backward()
        opt_flat.step()
    for a, b in zip(flat.views, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert not torch.equal(a, torch.nn.Parameter(_tensors(0)[SHAPES.index(tuple(a.shape))]))


def test_backward_fills_the_flat_gradient_with_each_tensors_gradient() -> None:
    """Oracle: torch.autograd.grad of the same loss on separate leaves, concatenated."""
    leaves = [t.requires_grad_() for t in _tensors(1)]
    expected = torch.cat([g.reshape(-1) for g in torch.autograd.grad(_loss(leaves, 0), leaves)])
    flat = FlatParameters([torch.nn.Parameter(t) for t in _tensors(1)])
    for _ in range(2):   # zeroed in place between steps: the second step is not the sum of two
        flat.zero_grad()
        _loss(flat.views, 0).backward()
        torch.testing.assert_close(flat.flat.grad, expected, rtol=0, atol=0)
    assert all(flat.owns(v) and flat.owns(v.grad) for v in flat.views)
    assert len(flat) == sum(t.numel() for t in _tensors(1))


def test_the_buffer_starts_from_the_given_values_and_updates_reach_the_views() -> None:
    flat = FlatParameters([torch.nn.Parameter(t) for t in _tensors(2)])
    for v, t in zip(flat.views, _tensors(2)):
        assert torch.equal(v.detach(), t) and v.is_leaf and v.requires_grad
    with torch.no_grad():
        flat.flat.add_(1.0)
    for v, t in zip(flat.views, _tensors(2)):
        assert torch.equal(v.detach(), t + 1.0)


@pytest.mark.parametrize("params, match", [([], "at least one"),
                                           ([torch.zeros(2), torch.zeros(2, dtype=torch.float64)], "one device and dtype")])
def test_bad_parameter_lists_are_refused(params: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FlatParameters(params)


@pytest.mark.parametrize("gate", ["none", "gaussian", "gumbel"])
def test_the_plane_steps_one_tensor_that_holds_every_node_parameter(gate: str) -> None:
    """Every stacked parameter, its gradient and every module parameter lie in the one buffer."""
    setup = prepare(load_scenario(tiny_scenario(routing__mode="dense", gate__kind=gate)), 0)
    engine = setup.engine
    (group,) = engine.optimizer.param_groups
    assert len(group["params"]) == 1 and group["params"][0] is engine.flat.flat
    n_module = sum(p.numel() for m in setup.modules.values() for p in m.parameters())
    assert len(engine.flat) == n_module
    engine.run_epoch(0, [torch.arange(64), torch.arange(64, 128)])
    for g in engine.groups:
        for p in g.params.values():
            assert engine.flat.owns(p) and engine.flat.owns(p.grad)
    for m in setup.modules.values():
        assert all(engine.flat.owns(p) for p in m.parameters())
