"""Federated averaging (FedAvg) of one-view models, and how they classify multi-view samples.

A client trains the global model on its own view for some local epochs; the server
averages the clients' parameter vectors weighted by their sample counts.  Parameters
travel as one flat float32 vector (``parameters_to_vector``), the tensor whose size the
ledger records.  On multi-view data one shared model sees a different view at every
client: ``per_client`` evaluation classifies from one view alone, ``late_fusion``
averages the clients' log-probabilities (their logits crossed the network).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch.nn import functional as F
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from inl_sim.learning.data import batch_indices
from inl_sim.learning.paradigms.models import ViewNet

__all__ = ["local_train", "fedavg", "sample_clients", "view_logits", "fl_accuracy"]


def local_train(net: ViewNet, start: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *, epochs: int,
                batch_size: int, lr: float, optimizer: str, weight_decay: float,
                generator: torch.Generator) -> tuple[torch.Tensor, float, int, int]:
    """Train from parameter vector ``start`` on one client's data.

    Returns the new parameter vector, the loss sum and correct count over the steps, and
    the number of samples the steps processed (for the compute time).

    A fresh optimiser per round, as in FedAvg; ``generator`` shuffles the batches.  The
    loss sum and correct count are those of the steps, as INL's history reports them; the
    step loop only keeps references to each step's loss, logits and targets and reduces
    them once at the end, so a step costs what the plain PyTorch loop costs.
    """
    vector_to_parameters(start, net.parameters())
    opt_cls = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
    opt = opt_cls(net.parameters(), lr=lr, weight_decay=weight_decay)
    losses, outputs, targets = [], [], []
    for _ in range(epochs):
        for idx in batch_indices(len(y), batch_size, generator):
            target = y[idx]
            logits = net(x[idx])                                           # (B, d_view) -> (B, C)
            loss = F.cross_entropy(logits, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss)
            outputs.append(logits)
            targets.append(target)
    with torch.no_grad():
        sizes = torch.tensor([len(t) for t in targets], dtype=torch.float32)
        loss_sum = float((torch.stack(losses).detach() * sizes).sum())
        correct = int((torch.cat(outputs).detach().argmax(-1) == torch.cat(targets)).sum())
    return parameters_to_vector(net.parameters()).detach().clone(), loss_sum, correct, int(sizes.sum())


def fedavg(vectors: Sequence[torch.Tensor], n_samples: Sequence[int]) -> torch.Tensor:
    """Sample-weighted mean of the clients' parameter vectors (McMahan et al.'s FedAvg)."""
    weights = torch.tensor([float(n) for n in n_samples], dtype=torch.float64)
    stacked = torch.stack(list(vectors)).to(torch.float64)                # (K, P)
    return ((weights[:, None] * stacked).sum(0) / weights.sum()).to(vectors[0].dtype)


def sample_clients(n_clients: int, k: int | None, generator: torch.Generator) -> list[int]:
    """Indices of the clients of one round: all, or ``k`` drawn without replacement (sorted)."""
    if k is None or k >= n_clients:
        return list(range(n_clients))
    return sorted(torch.randperm(n_clients, generator=generator)[:k].tolist())


@torch.no_grad()
def view_logits(net: ViewNet, vector: torch.Tensor, views: Mapping) -> dict:
    """The global model's logits on each client's view: ``{client: (N, C)}``."""
    vector_to_parameters(vector, net.parameters())
    return {v: net(x) for v, x in views.items()}


def fl_accuracy(logits: Mapping, labels: torch.Tensor) -> dict[str, float]:
    """Accuracy and loss of both evaluations: mean over clients of one view alone, and late fusion."""
    per = [float((lg.argmax(-1) == labels).float().mean()) for lg in logits.values()]
    per_loss = [float(F.cross_entropy(lg, labels)) for lg in logits.values()]
    fused = torch.stack([F.log_softmax(lg, -1) for lg in logits.values()]).mean(0)   # (N, C)
    return {"per_client": sum(per) / len(per), "per_client_loss": sum(per_loss) / len(per_loss),
            "late_fusion": float((fused.argmax(-1) == labels).float().mean()),
            "late_fusion_loss": float(F.nll_loss(F.log_softmax(fused, -1), labels))}
