"""The ``experts:`` section: a finite bank of experts placed on network nodes.

Schema and checks for the finite-expert-bank experiments (``python run.py experts``):
K experts sit at network nodes, a router node's gate sends each sample only to the
expert(s) it chooses, the experts answer the fusion node, and a data-dependent
selection rule with parameter alpha picks one expert of the bank from a training set.
Kept in its own module so that the hub files (``spec``, ``convert``) gain one line each.
Pure data and pure checks: no torch, no networkx.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Union

from inl_sim.errors import ScenarioError

__all__ = ["ExpertsSpec", "EXPERT_ROUTINGS", "CHOICE_CODINGS", "BANKS", "PLACEMENTS", "EXPERTS_CONVERTERS",
           "validate_experts"]

NodeId = Union[int, str]
EXPERT_ROUTINGS = ("hard_gumbel", "top_k")
CHOICE_CODINGS = ("fixed", "entropy")
BANKS = ("clusters", "class_groups")
PLACEMENTS = ("farthest", "random")
DIGITS_TOTAL = 1797  # scikit-learn's bundled digits
MIN_POOL = 100       # digits kept for the evaluation pool (the law D and the routed samples)


@dataclass(frozen=True)
class ExpertsSpec:
    """A bank of K experts on the network and the selection study over it.

    Defaults give a bank of 4 digit experts; ``nodes`` empty places them by
    ``placement`` (``farthest`` from the router by hops, ties by node order, or
    ``random``, seeded); ``router`` None is the network's first sensor.
    """

    n_experts: int = 4                 # K, the size of the bank
    nodes: tuple[NodeId, ...] = ()     # where the experts sit (empty: by placement)
    placement: str = "farthest"        # farthest | random
    router: NodeId | None = None       # the node that sees each sample and gates it
    routing: str = "hard_gumbel"       # hard_gumbel (one expert, sampled) | top_k (the k most likely)
    k: int = 1                         # top_k: experts per sample
    temperature: float = 1.0           # hard_gumbel: Gumbel-max on logits / temperature
    choice_coding: str = "fixed"       # fixed (log2 C(K, k) bits per sample) | entropy (range-coded)
    bank: str = "clusters"             # clusters (k-means of the pixels) | class_groups (digits split by label)
    n_pretrain: int = 700              # digits the experts and the router are trained on (offline)
    expert_steps: int = 300            # full-batch Adam steps per expert and for the router
    hidden_dim: int = 32               # expert MLP width
    lr: float = 1.0e-2
    alphas: tuple[float, ...] = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
    n_selection: int = 50              # n: size of each resampled training set S
    n_resamples: int = 400             # training sets drawn to estimate I(S;W) and the gap
    batch_size: int = 64               # samples per routed batch on the network
    seed: int | None = None            # null: the run seed


def _fail(path: str, value: object, rule: str, fix: str) -> ScenarioError:
    return ScenarioError(f"{path}: {value!r} {rule}; {fix}")


def _to_floats(value: object, path: str) -> tuple[float, ...]:
    """A list of finite numbers; numeric strings too (PyYAML reads ``1e-2`` as a string)."""
    if not isinstance(value, (list, tuple)) or not value:
        raise _fail(path, value, "must be a non-empty list of numbers", "write e.g. [0, 0.1, 1]")
    out = []
    for i, v in enumerate(value):
        try:
            number = float(v) if isinstance(v, (int, float, str)) and not isinstance(v, bool) else math.nan
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise _fail(f"{path}[{i}]", v, "must be a finite number", "write a number such as 0.1")
        out.append(number)
    return tuple(out)


def _to_nodes(value: object, path: str) -> tuple[NodeId, ...]:
    if not isinstance(value, (list, tuple)):
        raise _fail(path, value, "must be a list of node ids", "write e.g. [3, 5, 7, 8]")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, str)):
            raise _fail(path, list(value), "must hold node ids (integers or strings)", "use ids from the topology")
    return tuple(value)


#: converters for the field types this section adds (registered in ``convert._SPECIAL``)
EXPERTS_CONVERTERS: Mapping[object, object] = {tuple[float, ...]: _to_floats, tuple[NodeId, ...]: _to_nodes}

_CHOICES = {"placement": PLACEMENTS, "routing": EXPERT_ROUTINGS, "choice_coding": CHOICE_CODINGS, "bank": BANKS}
_MINIMA = {"n_experts": (2, "a bank needs two experts or more"), "k": (1, "route each sample to >= 1 expert"),
           "n_pretrain": (20, "give the experts some digits to learn from"),
           "expert_steps": (1, "train for at least one step"), "hidden_dim": (1, "use a positive width"),
           "n_selection": (1, "draw at least one sample per training set"),
           "n_resamples": (2, "I(S;W) needs two training sets or more"), "batch_size": (1, "use a positive batch")}

_MAXIMA = {"n_experts": (64, "use at most 64 experts"), "n_pretrain": (DIGITS_TOTAL, "use e.g. 700"),
           "expert_steps": (100_000, "use e.g. 300"), "hidden_dim": (4096, "use e.g. 32"),
           "n_selection": (100_000, "use e.g. 50"), "n_resamples": (100_000, "use e.g. 400"),
           "batch_size": (DIGITS_TOTAL, "use e.g. 64"), "temperature": (1.0e6, "use e.g. 1.0"),
           "lr": (10.0, "use e.g. 1.0e-2")}
MAX_RESAMPLED_LOSSES = 5.0e7


def validate_experts(spec: ExpertsSpec, path: str = "experts") -> None:
    """Check every value of the section once, naming field, value, rule and fix."""
    for name, choices in _CHOICES.items():
        if getattr(spec, name) not in choices:
            raise _fail(f"{path}.{name}", getattr(spec, name), f"is not one of {list(choices)}",
                        f"choose one of {list(choices)}")
    for name, (low, fix) in _MINIMA.items():
        if getattr(spec, name) < low:
            raise _fail(f"{path}.{name}", getattr(spec, name), f"must be >= {low}", fix)
    for name, (high, fix) in _MAXIMA.items():
        if getattr(spec, name) > high:
            raise _fail(f"{path}.{name}", getattr(spec, name), f"must be <= {high:g}", fix)
    if spec.n_resamples * spec.n_selection * spec.n_experts > MAX_RESAMPLED_LOSSES:
        raise _fail(f"{path}.n_resamples", spec.n_resamples, f"x n_selection x n_experts must be <= "
                    f"{MAX_RESAMPLED_LOSSES:g} (the resampled losses are held in memory)",
                    "lower n_resamples or n_selection")
    if len(spec.alphas) > 1000 or max(spec.alphas) > 1.0e6:
        raise _fail(f"{path}.alphas", f"{len(spec.alphas)} values up to {max(spec.alphas):g}",
                    "must be at most 1000 values, each <= 1e6 (beyond that the rule is already ERM)",
                    "use a short grid such as [0, 0.1, 1, 10]")
    if spec.k > spec.n_experts:
        raise _fail(f"{path}.k", spec.k, f"must be <= n_experts ({spec.n_experts})", "lower k or add experts")
    if spec.routing == "hard_gumbel" and spec.k != 1:
        raise _fail(f"{path}.k", spec.k, "must be 1 with routing hard_gumbel (one sampled expert)",
                    "set k: 1, or routing: top_k")
    if spec.nodes and len(spec.nodes) != spec.n_experts:
        raise _fail(f"{path}.nodes", list(spec.nodes), f"must list n_experts ({spec.n_experts}) nodes",
                    "give one node per expert, or leave nodes empty to use placement")
    if len(set(spec.nodes)) != len(spec.nodes):
        raise _fail(f"{path}.nodes", list(spec.nodes), "has repeated nodes", "put each expert on its own node")
    if spec.temperature <= 0 or spec.lr <= 0:
        bad = "temperature" if spec.temperature <= 0 else "lr"
        raise _fail(f"{path}.{bad}", getattr(spec, bad), "must be > 0", "use a positive value")
    if any(a < 0 for a in spec.alphas):
        raise _fail(f"{path}.alphas", list(spec.alphas), "must all be >= 0", "alpha = 0 is the data-free rule")
    if spec.n_pretrain > DIGITS_TOTAL - MIN_POOL:
        raise _fail(f"{path}.n_pretrain", spec.n_pretrain, f"must leave >= {MIN_POOL} of the {DIGITS_TOTAL} digits "
                    "for the evaluation pool", f"use at most {DIGITS_TOTAL - MIN_POOL}, e.g. 700")
    if spec.seed is not None and not 0 <= spec.seed < 2 ** 32:
        raise _fail(f"{path}.seed", spec.seed, "must be in 0..4294967295", "use a non-negative 32-bit seed")
