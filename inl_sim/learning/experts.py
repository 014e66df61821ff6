"""A finite bank of digit experts, pretrained offline, and the router that gates among them.

The bank follows the finite-expert-bank experiments (Deylam Salehi and Khalesi, arXiv
2605.05278; our own code): K small classifiers, each trained only on one part of a
pretraining pool of scikit-learn's 8x8 digits (one k-means cluster of the pixels, or one
group of classes), so each is good on its part and poor elsewhere.  A router (a linear
gate over the pixels) is trained on the same pool to maximise the mixture likelihood
sum_k q(k|x) p_k(y|x) with the experts frozen, which is the MoE gate's objective.

Everything the study needs downstream is a matrix: ``wrong[x, k]`` (expert k
misclassifies pool sample x), the router's q(k|x), the choices T of hard-Gumbel or
top-k routing.  Seeded: one ``seed`` derives the split, the clustering, every expert's
initialisation and the Gumbel noise.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from inl_sim.errors import DataError
from inl_sim.scenario.experts import ExpertsSpec

__all__ = ["ExpertBank", "Routing", "build_bank", "route", "choice_codebook", "fixed_choice_bits", "choice_nbytes",
           "choice_model"]

log = logging.getLogger(__name__)
N_CLASSES = 10


@dataclass(frozen=True)
class ExpertBank:
    """K trained experts and their router, with the pool they are evaluated on."""

    experts: tuple[nn.Module, ...]
    router: nn.Module
    pool_x: torch.Tensor          # (N, 64) standardised digits the experts never saw
    pool_y: torch.Tensor          # (N,) labels
    pretrain_x: torch.Tensor      # (P, 64)
    parts: tuple[str, ...]        # what each expert was trained on, e.g. "cluster 2 (131 digits)"

    @property
    def n_experts(self) -> int:
        return len(self.experts)

    @torch.no_grad()
    def expert_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """(N, K, C) log p_k(y|x) of every expert."""
        return torch.stack([e(x).log_softmax(-1) for e in self.experts], dim=1)

    @torch.no_grad()
    def wrong(self) -> NDArray[np.float64]:
        """(N, K) 1 where expert k misclassifies pool sample x: the bank's distortion matrix."""
        pred = self.expert_log_probs(self.pool_x).argmax(-1)                 # (N, K)
        return (pred != self.pool_y[:, None]).double().numpy()

    @torch.no_grad()
    def gate(self, x: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """(N, K) router probabilities q(k|x) at ``temperature``."""
        return (self.router(x) / temperature).softmax(-1)


def _mlp(d_in: int, hidden: int, d_out: int, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):     # construction draws from the global RNG: scope it
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out))


def _fit(module: nn.Module, loss_fn, steps: int, lr: float) -> float:  # type: ignore[no-untyped-def]
    """Full-batch Adam; deterministic given the module's initialisation."""
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    return float(loss.detach())


def _digits(seed: int, n_pretrain: int) -> tuple[torch.Tensor, ...]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - depends on the environment
        raise DataError("experts: the digits bank needs scikit-learn; pip install scikit-learn") from None
    bunch = load_digits()
    order = np.random.default_rng(seed).permutation(len(bunch.target))
    x, y = bunch.data[order].astype(np.float64), bunch.target[order].astype(np.int64)
    mean, std = x[:n_pretrain].mean(0), x[:n_pretrain].std(0)
    x = (x - mean) / np.where(std > 1e-8, std, 1.0)                          # pretraining statistics only
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return t(x[:n_pretrain]).float(), t(y[:n_pretrain]), t(x[n_pretrain:]).float(), t(y[n_pretrain:])


def _parts(spec: ExpertsSpec, x: torch.Tensor, y: torch.Tensor, seed: int) -> list[NDArray[np.int64]]:
    """Indices of the pretraining digits each expert learns from."""
    k = spec.n_experts
    if spec.bank == "class_groups":
        if k > N_CLASSES:
            raise DataError(f"experts.n_experts: {k} class groups of {N_CLASSES} digit classes is too many; "
                            f"use n_experts <= {N_CLASSES} or bank: clusters")
        groups = np.array_split(np.random.default_rng(seed).permutation(N_CLASSES), k)
        return [np.flatnonzero(np.isin(y.numpy(), g)) for g in groups]
    from scipy.cluster.vq import kmeans2
    _, label = kmeans2(x.double().numpy(), k, seed=np.random.default_rng(seed), minit="++")
    return [np.flatnonzero(label == j) for j in range(k)]


def _train_expert(spec: ExpertsSpec, xs: torch.Tensor, ys: torch.Tensor, seed: int) -> nn.Module:
    expert = _mlp(xs.shape[1], spec.hidden_dim, N_CLASSES, seed)
    loss = _fit(expert, lambda: nn.functional.cross_entropy(expert(xs), ys), spec.expert_steps, spec.lr)
    log.debug("expert trained on %d digits, final loss %.4f", len(ys), loss)
    return expert.requires_grad_(False).eval()


def _train_router(spec: ExpertsSpec, experts: list[nn.Module], x: torch.Tensor, y: torch.Tensor,
                  seed: int) -> nn.Module:
    """Linear gate maximising the mixture likelihood log sum_k q(k|x) p_k(y|x), experts frozen."""
    with torch.no_grad():
        log_p = torch.stack([e(x).log_softmax(-1) for e in experts], 1)           # (P, K, C)
        log_py = log_p.gather(2, y[:, None, None].expand(-1, len(experts), 1))[..., 0]  # (P, K)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        router = nn.Linear(x.shape[1], len(experts))
    nll = lambda: -torch.logsumexp(router(x).log_softmax(-1) + log_py, dim=1).mean()  # noqa: E731
    loss = _fit(router, nll, spec.expert_steps, spec.lr)
    log.info("router trained on %d digits, mixture NLL %.4f", len(y), loss)
    return router.requires_grad_(False).eval()


def build_bank(spec: ExpertsSpec, seed: int) -> ExpertBank:
    """Pretrain the K experts on their parts and the router on the whole pretraining pool.

    Raises
    ------
    DataError
        When a part is empty (more experts than clusters or class groups can fill).
    """
    px, py, pool_x, pool_y = _digits(seed, spec.n_pretrain)
    parts = _parts(spec, px, py, seed)
    experts, names = [], []
    for j, idx in enumerate(parts):
        if len(idx) == 0:
            raise DataError(f"experts.n_experts: expert {j} got no pretraining digits ({spec.bank}); "
                            "lower n_experts or raise n_pretrain")
        experts.append(_train_expert(spec, px[idx], py[idx], seed * 1_009 + j))
        classes = "".join(map(str, sorted(set(py[idx].tolist()))))
        names.append(f"{spec.bank[:-1].replace('_', ' ')} {j}: {len(idx)} digits, classes {classes}")
    router = _train_router(spec, experts, px, py, seed * 1_009 + len(parts))
    return ExpertBank(tuple(experts), router, pool_x, pool_y, px, tuple(names))


# --------------------------------------------------------------------------- routing
@dataclass(frozen=True)
class Routing:
    """Which experts each pool sample is sent to, and what the fusion node then predicts."""

    kind: str                       # hard_gumbel | top_k
    q: NDArray[np.float64]          # (N, K) router probabilities
    chosen: NDArray[np.int64]       # (N, k) expert indices per sample
    symbol: NDArray[np.int64]       # (N,) index of the chosen set in choice_codebook(K, k)
    predicted: NDArray[np.int64]    # (N,) fusion node's class from the chosen experts' outputs
    broadcast_predicted: NDArray[np.int64]  # (N,) from all K outputs, mixed by q (q travels too)


def choice_codebook(n_experts: int, k: int) -> list[tuple[int, ...]]:
    """Every set of k experts, in lexicographic order: the alphabet of the router's choice."""
    return list(itertools.combinations(range(n_experts), k))


def route(bank: ExpertBank, kind: str, k: int = 1, temperature: float = 1.0, *, seed: int = 0) -> Routing:
    """Route every pool sample: hard Gumbel samples one expert from q, top-k takes the k most likely.

    Gumbel-max (argmax of logits / T + Gumbel noise) draws exactly from q = softmax(logits /
    T); the noise comes from a generator seeded with ``seed``.  The fusion node averages
    the chosen experts' class probabilities (it is told which experts, not q); the
    broadcast baseline mixes all K outputs with q, which the router then sends along.
    """
    x = bank.pool_x
    with torch.no_grad():
        logits = bank.router(x) / temperature                                # (N, K)
        q = logits.softmax(-1)
        if kind == "hard_gumbel":
            u = torch.rand(logits.shape, generator=torch.Generator().manual_seed(seed), dtype=logits.dtype)
            gumbel = -torch.log(-torch.log(u.clamp(1e-20, 1.0 - 1e-7)))
            chosen = (logits + gumbel).argmax(-1, keepdim=True)              # (N, 1)
        else:
            chosen = q.topk(k, dim=-1).indices.sort(-1).values               # (N, k)
        p = bank.expert_log_probs(x).exp()                                   # (N, K, C)
        mask = torch.zeros_like(q).scatter_(1, chosen, 1.0)                  # (N, K)
        routed = (mask[..., None] * p).sum(1)                                # (N, C)
        mixed = (q[..., None] * p).sum(1)                                    # (N, C)
    index = {c: i for i, c in enumerate(choice_codebook(q.shape[1], chosen.shape[1]))}
    symbol = np.array([index[tuple(row)] for row in chosen.tolist()], dtype=np.int64)
    q64 = q.double().numpy()
    return Routing(kind, q64 / q64.sum(axis=1, keepdims=True), chosen.numpy(), symbol, routed.argmax(-1).numpy(),
                   mixed.argmax(-1).numpy())


# --------------------------------------------------------------------------- choice coding
def fixed_choice_bits(n_experts: int, k: int) -> int:
    """Bits of a fixed-length code for one choice of k of K experts: ceil(log2 C(K, k))."""
    return max(1, math.ceil(math.log2(math.comb(n_experts, k))))


def choice_nbytes(symbols: NDArray[np.int64], coding: str, *, bits_per_choice: int,
                  probs: NDArray[np.float64] | None = None) -> int:
    """Wire size of one batch of choices: fixed-length, or range-coded under ``probs``.

    ``fixed`` pays ``bits_per_choice`` per sample, rounded up to whole bytes per batch.
    ``entropy`` codes with constriction's range coder under a categorical model both ends
    know in advance (the choice frequencies on the pretraining pool); the size is the
    coder's real output in 32-bit words, so it pays the coder's overhead too.
    """
    if coding == "fixed":
        return math.ceil(len(symbols) * bits_per_choice / 8)
    from inl_sim.learning.coding import _constriction
    model = _constriction().stream.model.Categorical(np.asarray(probs, dtype=np.float64), perfect=False)
    encoder = _constriction().stream.queue.RangeEncoder()
    encoder.encode(np.asarray(symbols, dtype=np.int32), model)
    return 4 * int(encoder.get_compressed().size)


def choice_model(bank: ExpertBank, kind: str, k: int, temperature: float, *, seed: int,
                 floor: float = 1e-4) -> NDArray[np.float64]:
    """The shared entropy-coding model: choice frequencies of the router on the pretraining pool.

    Floored at ``floor`` so that no choice is uncodable, then renormalised.
    """
    probe = ExpertBank(bank.experts, bank.router, bank.pretrain_x, torch.zeros(len(bank.pretrain_x), dtype=torch.long),
                       bank.pretrain_x, bank.parts)
    symbols = route(probe, kind, k, temperature, seed=seed + 1).symbol
    counts = np.bincount(symbols, minlength=math.comb(bank.n_experts, k)).astype(np.float64)
    p = np.maximum(counts / counts.sum(), floor)
    return p / p.sum()
