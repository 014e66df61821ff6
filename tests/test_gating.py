"""Tests of the finite-rate gates and of link-cut training with them.

Oracles are independent of ``inl_sim.learning.information``: the Gaussian rate is checked against
``torch.distributions``' KL on the gate's own ``stats`` layer, the Gumbel rate against a
numpy plug-in mutual information and against the empirical entropy of the arg-max choices
(``collections.Counter``), the Gumbel-max sampling law against ``softmax(logits)``.

The core check of the engine: one step of link-cut training (every message detached on
send, its error sent back as an explicit tensor) leaves on every parameter exactly the
gradient of the same model trained as ONE autograd graph on
``CE + sum over active links (child, parent) of beta_child * rate_child``.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import inl_sim
from inl_sim.errors import ScenarioError
from inl_sim.study.experiment import prepare
from inl_sim.learning.gating import GATES, Gate, GateOutput, GaussianGate, GumbelGate, NoGate, make_gate
from inl_sim.learning.modules import composed_forward
from inl_sim.scenario import GateSpec, load_scenario

from conftest import tiny_scenario

D = 8


def _z(batch: int, d: int = D, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(batch, d, generator=torch.Generator().manual_seed(seed))


def _gaussian(seed: int = 0, **spec: object) -> GaussianGate:
    torch.manual_seed(seed)  # initialisers draw from the global RNG; tests own that
    return GaussianGate(D, GateSpec(kind="gaussian", **spec))


def _gumbel(k: int, temperature: float, hard: bool = False, seed: int = 0) -> GumbelGate:
    torch.manual_seed(seed)
    return GumbelGate(D, GateSpec(kind="gumbel", n_choices=k, temperature=temperature, hard=hard))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- gaussian

def test_gaussian_message_is_reparameterised_sample_and_rate_is_closed_form_kl() -> None:
    gate, z = _gaussian(), _z(32)
    out = gate(z, _gen(5))
    with torch.no_grad():
        mu, log_var = gate.stats(z).chunk(2, dim=-1)                       # (B, d) each
    assert -12.0 < float(log_var.min()) and float(log_var.max()) < 6.0     # the clamp is inactive here
    std = torch.exp(0.5 * log_var)
    eps = torch.randn(mu.shape, generator=_gen(5))                         # the same draw, by the same seed
    torch.testing.assert_close(out.message, mu + std * eps, rtol=1e-6, atol=1e-6)
    kl = torch.distributions.kl_divergence(torch.distributions.Normal(mu, std),
                                           torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu)))
    torch.testing.assert_close(out.rate_nats, kl.sum(-1).mean(), rtol=1e-5, atol=1e-6)
    # and the textbook formula in float64 numpy
    m, lv = mu.double().numpy(), log_var.double().numpy()
    closed = 0.5 * (m ** 2 + np.exp(lv) - 1.0 - lv).sum(-1).mean()
    assert out.rate_nats.item() == pytest.approx(closed, rel=1e-5)
    assert out.rate_nats.shape == ()


def test_gaussian_gradient_flows_through_mean_and_std() -> None:
    """dT/d(mu) = 1 and dT/d(log_var) = 0.5 * sigma * eps: the reparameterisation trick."""
    gate, z = _gaussian(), _z(16)
    out = gate(z, _gen(9))
    out.message.sum().backward()
    with torch.no_grad():
        mu, log_var = gate.stats(z).chunk(2, dim=-1)
    eps = torch.randn(mu.shape, generator=_gen(9))
    expected_bias = torch.cat([torch.full((D,), 16.0), (0.5 * torch.exp(0.5 * log_var) * eps).sum(0)])
    torch.testing.assert_close(gate.stats.bias.grad, expected_bias, rtol=1e-5, atol=1e-6)


def test_gaussian_eval_returns_mean_unless_eval_sample() -> None:
    gate, z = _gaussian(), _z(32)
    gate.eval()
    out = gate(z, _gen(1))
    with torch.no_grad():
        mu, _ = gate.stats(z).chunk(2, dim=-1)
    assert torch.equal(out.message, mu)
    assert torch.equal(gate(z, _gen(2)).message, mu)                       # no noise at all
    sampler = _gaussian(eval_sample=True)
    sampler.eval()
    assert not torch.equal(sampler(z, _gen(1)).message, sampler(z, _gen(2)).message)


@pytest.mark.parametrize("make", [lambda: _gaussian(), lambda: _gumbel(5, 0.7), lambda: _gumbel(5, 0.7, hard=True)],
                         ids=["gaussian", "gumbel", "gumbel-hard"])
def test_gates_are_reproducible_and_never_touch_global_rng(make) -> None:  # type: ignore[no-untyped-def]
    gate, z = make(), _z(64)
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    a, b, c = gate(z, _gen(7)), gate(z, _gen(7)), gate(z, _gen(8))
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(a.message, b.message) and torch.equal(a.rate_nats, b.rate_nats)
    assert not torch.equal(a.message, c.message)


def test_no_gate_is_identity_without_rate() -> None:
    z = _z(4)
    out = NoGate(D, GateSpec())(z, _gen(0))
    assert out.message is z and out.rate_nats is None


# --------------------------------------------------------------------------- gumbel

def _plugin_mi_numpy(q: np.ndarray) -> float:
    """H(mean q) - mean H(q) in float64, 0 log 0 = 0."""
    def h(p: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return -np.where(p > 0, p * np.log(p), 0.0).sum(-1)
    return float(h(q.mean(0)) - h(q).mean())


@pytest.mark.parametrize("temperature", [0.05, 0.3, 1.0, 4.0])
def test_gumbel_rate_is_plugin_mi_and_never_exceeds_log_k(temperature: float) -> None:
    for k in range(2, 17):
        for trial, scale in enumerate((0.1, 1.0, 10.0)):
            gate = _gumbel(k, temperature, seed=k * 10 + trial)
            z = _z(48, seed=k * 100 + trial, scale=scale)
            rate = gate(z, _gen(trial)).rate_nats.item()
            with torch.no_grad():
                q = torch.softmax(gate.logits(z).double() / temperature, dim=-1).numpy()
            assert rate <= math.log(k) + 1e-6, (k, temperature, scale)
            assert rate >= 0.0
            assert rate == pytest.approx(_plugin_mi_numpy(q), abs=2e-5), (k, temperature, scale)


@pytest.mark.parametrize("k", [2, 3, 5, 8, 16])
def test_gumbel_rate_at_zero_temperature_is_entropy_of_routing_decisions(k: int) -> None:
    gate, z = _gumbel(k, 1e-4, seed=k), _z(512, seed=k, scale=3.0)
    with torch.no_grad():
        choices = gate.logits(z).argmax(-1).tolist()
    counts = np.array(list(Counter(choices).values()), dtype=np.float64)
    p = counts / counts.sum()
    empirical_entropy = float(-(p * np.log(p)).sum())
    assert len(counts) >= 2  # a non-trivial routing, or the check says nothing
    assert gate(z, _gen(0)).rate_nats.item() == pytest.approx(empirical_entropy, rel=1e-4, abs=1e-5)


def test_gumbel_hard_is_one_hot_codeword_with_gradient_to_logits() -> None:
    for k in (2, 5, 16):
        hard, soft = _gumbel(k, 0.5, hard=True, seed=k), _gumbel(k, 0.5, hard=False, seed=k)
        z = _z(128, seed=k)
        msg = hard(z, _gen(3)).message                                    # (B, d)
        # exactly one codebook row per sample
        matches = (msg[:, None, :] == hard.codebook[None, :, :]).all(-1)  # (B, K)
        assert bool((matches.sum(-1) >= 1).all())
        w = torch.randn(msg.shape, generator=_gen(4))
        (msg * w).sum().backward()
        assert hard.logits.weight.grad is not None and float(hard.logits.weight.grad.abs().sum()) > 0
        # straight-through: the gradient is the soft sample's, drawn with the same noise
        (soft(z, _gen(3)).message * w).sum().backward()
        torch.testing.assert_close(hard.logits.weight.grad, soft.logits.weight.grad, rtol=1e-5, atol=1e-7)


def test_gumbel_choices_follow_the_tempered_channel() -> None:
    """The hard choices are distributed as q = softmax(logits / temperature), the channel whose rate is reported."""
    gate = _gumbel(4, 0.3, hard=True, seed=2)
    n = 20_000
    z = _z(1, seed=3).expand(n, D)
    msg = gate(z, _gen(11)).message.detach()
    choice = (msg[:, None, :] == gate.codebook.detach()[None]).all(-1).float().argmax(-1).numpy()
    with torch.no_grad():
        p = torch.softmax(gate.logits(z[:1]) / 0.3, -1)[0].double().numpy()
    freq = np.bincount(choice, minlength=4) / n
    assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-3), (freq, p)


def test_gumbel_eval_sends_arg_max_codeword() -> None:
    gate, z = _gumbel(6, 1.0, seed=1), _z(64)
    gate.eval()
    with torch.no_grad():
        expected = gate.codebook[gate.logits(z).argmax(-1)]
    assert torch.equal(gate(z, _gen(0)).message, expected)


# --------------------------------------------------------------------------- registry

def test_registry_has_the_three_gates_and_names_them_on_error() -> None:
    assert {"none", "gaussian", "gumbel"} <= set(GATES)
    assert isinstance(make_gate(GateSpec(kind="gumbel"), D), GumbelGate)
    with pytest.raises(ScenarioError) as info:
        make_gate(GateSpec(kind="bogus"), D)
    text = str(info.value)
    assert "gate.kind" in text and "bogus" in text
    assert all(name in text for name in ("none", "gaussian", "gumbel"))


def test_unknown_gate_in_a_run_is_a_scenario_error() -> None:
    with pytest.raises(ScenarioError, match="gaussian"):
        inl_sim.run(load_scenario(tiny_scenario(gate__kind="bogus")), 0)


class ScaleGate(Gate):
    """A test-only gate: a learnt per-coordinate scale, rate = mean squared message."""

    estimator = "test: mean squared message"
    calls = 0

    def __init__(self, latent_dim: int, spec: GateSpec) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((latent_dim,), 0.5))

    def forward(self, z: torch.Tensor, generator: torch.Generator | None = None) -> GateOutput:
        type(self).calls += 1
        t = z * self.scale                                                 # (B, d)
        return GateOutput(t, t.square().sum(-1).mean())


def test_a_gate_registered_at_test_time_runs_end_to_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(GATES, "scale", ScaleGate)
    monkeypatch.setattr(ScaleGate, "calls", 0)
    res = inl_sim.run(load_scenario(tiny_scenario(gate__kind="scale", gate__beta=1e-2)), 0)
    assert ScaleGate.calls > 0
    assert res.rate_estimator == ScaleGate.estimator
    assert res.rate_bits is not None and res.rate_bits > 0
    assert set(res.rate_bits_per_link) == set(res.graph.edges)
    assert res.summary()["gate"] == "scale"


def test_negative_node_beta_is_a_scenario_error() -> None:
    with pytest.raises(ScenarioError, match="node_beta"):
        load_scenario(tiny_scenario(gate__kind="gaussian", gate__node_beta={"3": -1.0}))


@pytest.mark.parametrize("node_beta", [{"33": 1.0}, {"0": 1.0}], ids=["no-such-node", "fusion"])
def test_node_beta_for_a_node_without_a_gate_is_a_scenario_error(node_beta: dict) -> None:
    with pytest.raises(ScenarioError, match="node_beta"):
        inl_sim.run(load_scenario(tiny_scenario(gate__kind="gaussian", gate__node_beta=node_beta)), 0)


# --------------------------------------------------------------------------- link-cut == one graph

def _beta(sc, v) -> float:  # type: ignore[no-untyped-def]
    """beta of node v from the scenario itself (per-node override, else gate.beta)."""
    nb = sc.gate.node_beta
    return float(nb[v]) if v in nb else float(nb.get(str(v), sc.gate.beta))


GRAD_CASES = [
    ("spt", {"gate__kind": "none"}),
    ("dense", {"gate__kind": "none"}),
    ("spt", {"gate__kind": "gaussian", "gate__beta": 0.05}),
    ("dense", {"gate__kind": "gaussian", "gate__beta": 0.05}),
    ("spt", {"gate__kind": "gumbel", "gate__beta": 0.05}),
    ("dense", {"gate__kind": "gumbel", "gate__beta": 0.05, "gate__hard": True, "gate__temperature": 0.5}),
    ("dense", {"gate__kind": "gaussian", "gate__beta": 0.01, "gate__node_beta": {"3": 0.5, "5": 0.0},
               "model__aggregation": "mean"}),
]


@pytest.mark.parametrize("mode,dotted", GRAD_CASES, ids=[f"{m}-{'-'.join(f'{v}' for v in d.values())}"[:60]
                                                         for m, d in GRAD_CASES])
def test_link_cut_step_gives_the_gradients_of_one_autograd_graph(mode: str, dotted: dict) -> None:
    sc = load_scenario(tiny_scenario(routing__mode=mode, **dotted))
    cut, ref = prepare(sc, 0, apply_updates=False), prepare(sc, 0, apply_updates=False)
    generators = {v: torch.Generator().set_state(cut.engine.nodes[v].generator.get_state()) for v in cut.graph.order}
    idx = torch.arange(64)

    cut.engine.run_epoch(0, [idx])

    views = {v: x[idx] for v, x in ref.dataset.train_views.items()}
    logits, rates = composed_forward(ref.graph, ref.modules, views, generators)
    loss = F.cross_entropy(logits, ref.dataset.train_labels[idx])
    for child, _parent in ref.graph.edges:
        if child in rates:
            loss = loss + _beta(sc, child) * rates[child]
    loss.backward()

    if dotted["gate__kind"] != "none":
        assert set(rates) == {c for c, _ in ref.graph.edges}  # every sender's rate entered the loss
    n_checked = 0
    for v in ref.graph.order:
        named_cut = dict(cut.modules[v].named_parameters())
        for name, p_ref in ref.modules[v].named_parameters():
            g_cut, g_ref = named_cut[name].grad, p_ref.grad
            assert (g_cut is None) == (g_ref is None), (v, name)
            if g_ref is not None:
                torch.testing.assert_close(g_cut, g_ref, rtol=1e-5, atol=1e-6, msg=lambda m: f"node {v} {name}: {m}")
                n_checked += 1
    assert n_checked >= 3 * len(ref.graph.order)


def test_link_cut_gradients_match_through_an_entropy_coded_wire() -> None:
    """Quantised messages, straight-through: the one-graph reference sees the same wire."""
    sc = load_scenario(tiny_scenario(routing__mode="dense", gate__kind="gaussian", gate__beta=0.05,
                                     message__encoding="entropy_coded"))
    cut, ref = prepare(sc, 0, apply_updates=False), prepare(sc, 0, apply_updates=False)
    generators = {v: torch.Generator().set_state(cut.engine.nodes[v].generator.get_state()) for v in cut.graph.order}
    idx = torch.arange(32)
    cut.engine.run_epoch(0, [idx])
    codec = ref.engine.forward_codec
    logits, rates = composed_forward(ref.graph, ref.modules, {v: x[idx] for v, x in ref.dataset.train_views.items()},
                                     generators, wire=lambda t: codec.encode(t).tensor)
    loss = F.cross_entropy(logits, ref.dataset.train_labels[idx]) + sum(0.05 * rates[c] for c, _ in ref.graph.edges)
    loss.backward()
    for v in ref.graph.order:
        for (name, p_cut), (_, p_ref) in zip(cut.modules[v].named_parameters(), ref.modules[v].named_parameters()):
            torch.testing.assert_close(p_cut.grad, p_ref.grad, rtol=1e-5, atol=1e-6, msg=lambda m: f"{v} {name}: {m}")


def _reference_loss(ref, sc, idx: torch.Tensor, generators: dict) -> torch.Tensor:  # type: ignore[no-untyped-def]
    views = {v: x[idx] for v, x in ref.dataset.train_views.items()}
    logits, rates = composed_forward(ref.graph, ref.modules, views, generators)
    loss = F.cross_entropy(logits, ref.dataset.train_labels[idx])
    return loss + sum((_beta(sc, c) * rates[c] for c, _ in ref.graph.edges if c in rates), torch.zeros(()))


@pytest.mark.parametrize("gate", ["gaussian", "gumbel"])
def test_several_steps_with_updates_match_one_graph_trained_with_adam(gate: str) -> None:
    """Per-node Adam on link-cut gradients == one Adam over all parameters (Adam is elementwise);
    the last step's gradients and the final parameters agree, batches of unequal size included."""
    sc = load_scenario(tiny_scenario(routing__mode="dense", gate__kind=gate, gate__beta=0.05))
    cut, ref = prepare(sc, 0), prepare(sc, 0)
    generators = {v: torch.Generator().set_state(cut.engine.nodes[v].generator.get_state()) for v in cut.graph.order}
    batches = list(torch.randperm(160, generator=_gen(0)).split(64))                  # 64, 64, 32
    cut.engine.run_epoch(0, batches)

    params = [p for v in ref.graph.order for p in ref.modules[v].parameters()]
    opt = torch.optim.Adam(params, lr=sc.training.lr)
    for idx in batches:
        opt.zero_grad(set_to_none=True)
        _reference_loss(ref, sc, idx, generators).backward()
        opt.step()
    for v in ref.graph.order:
        for (name, p_cut), (_, p_ref) in zip(cut.modules[v].named_parameters(), ref.modules[v].named_parameters()):
            torch.testing.assert_close(p_cut.grad, p_ref.grad, rtol=1e-5, atol=1e-6, msg=lambda m: f"{v} {name}: {m}")
            # Adam's step is scale-free (m / sqrt(v)): float32 rounding differences of a
            # near-zero gradient can move a parameter by a small fraction of lr (3e-3).
            torch.testing.assert_close(p_cut.detach(), p_ref.detach(), rtol=1e-5, atol=1e-5,
                                       msg=lambda m: f"{v} {name}: {m}")
