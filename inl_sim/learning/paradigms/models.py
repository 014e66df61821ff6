"""The models of the centralised, split-learning and federated paradigms.

:class:`MultiViewNet` is one model over every sensor's view: a bottom MLP per sensor
(view -> cut activation) and a top MLP over the concatenated cut activations.
Centralised learning trains it whole at the fusion node; split learning cuts it at the
bottoms' outputs, so with the same seed both start from the same weights and (float32
on the wire) compute the same gradients.  :class:`ViewNet` is the one-view model every
federated client trains on its own view.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["MultiViewNet", "ViewNet", "linear_flops", "seeded"]


def _mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_out))


def linear_flops(module: nn.Module) -> int:
    """Forward FLOPs per sample: 2 per multiply-add of every linear map."""
    return sum(2 * m.in_features * m.out_features for m in module.modules() if isinstance(m, nn.Linear))


def seeded(seed: int, build):  # type: ignore[no-untyped-def]
    """Build a module with torch's global RNG seeded inside a fork (the caller's RNG is untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


class MultiViewNet(nn.Module):
    """Bottom MLPs per sensor view and a top MLP over their concatenated outputs.

    ``view_dims[i]`` is sensor i's view width; every bottom emits ``cut_width`` values.
    """

    def __init__(self, view_dims: Sequence[int], cut_width: int, hidden_dim: int, n_classes: int) -> None:
        super().__init__()
        self.cut_width = cut_width
        self.bottoms = nn.ModuleList([_mlp(d, hidden_dim, cut_width) for d in view_dims])
        self.top = _mlp(cut_width * len(view_dims), hidden_dim, n_classes)

    def cut(self, views: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Each sensor's cut activation, ``[(B, d_view_i)] -> [(B, cut_width)]``."""
        return [bottom(x) for bottom, x in zip(self.bottoms, views)]

    def head(self, cuts: Sequence[torch.Tensor]) -> torch.Tensor:
        """Top model: ``[(B, cut_width)] * k -> (B, k * cut_width) -> (B, C)``."""
        return self.top(torch.cat(list(cuts), dim=-1))

    def forward(self, views: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.head(self.cut(views))                                  # (B, C)


class ViewNet(nn.Module):
    """One view -> class logits; the model each federated client trains and the server averages."""

    def __init__(self, view_dim: int, latent_dim: int, hidden_dim: int, n_classes: int) -> None:
        super().__init__()
        self.encoder = _mlp(view_dim, hidden_dim, latent_dim)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(latent_dim, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))                                  # (B, d_view) -> (B, C)
