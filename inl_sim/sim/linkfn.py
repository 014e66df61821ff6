"""Links of the learning plane: codecs over stacked messages and the link autograd function.

In the fast engine one training step is ONE autograd graph, but every tensor that would
cross a link still exists and is sized from its values:

* forward, a sender's message passes the message codec once (:func:`encode_stack`), as in
  the reference engine, and the same decoded bytes go to each of its parents;
* :class:`LinkGather` hands each parent the decoded messages of its children; its
  backward is the link's way back: each parent's error for each child passes the error
  codec on that link (one encoding per link), and a child with several parents receives
  the sum of their decoded errors (autograd accumulates them).

Fixed-width codecs (``float32``, ``float16``, ``int8``) are applied to all G messages of
a group at once, with the same element-wise arithmetic as their per-tensor ``encode``;
every other codec (entropy coding, dither) codes each message on its own in a loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from inl_sim.learning.coding import Codec, Float16Codec, Float32Codec, Int8Codec
from inl_sim.learning.dither import error_generator, keyed_errors

__all__ = ["FIXED_WIDTH", "NonFiniteMessage", "encode_stack", "GroupLink", "LinkGather", "gather"]


FIXED_WIDTH = (Float32Codec, Float16Codec, Int8Codec)   # sized without looking at values


class NonFiniteMessage(Exception):
    """Internal: row ``index`` of a stacked message is not finite (the plane names the node)."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


def _straight_through(x: torch.Tensor, decoded: torch.Tensor) -> torch.Tensor:
    """Value exactly ``decoded``, gradient identity to ``x`` (as the codecs' own)."""
    if not x.requires_grad:
        return decoded
    return decoded.detach() + (x - x.detach())


def encode_stack(codec: Codec, x: torch.Tensor, *, gates: Sequence[Any] | None = None,
                 generators: Sequence[torch.Generator] | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """Encode G messages at once: ``x`` (G, B, d) -> decoded (G, B, d), nbytes (G,) int64.

    Each row is coded as its own tensor (per-tensor scales, per-message headers), so the
    bytes and values equal G separate ``codec.encode`` calls.  ``gates`` / ``generators``
    are the senders' gate outputs and generators, passed to per-message codecs.
    """
    g_count, per = x.shape[0], (x[0].numel() if x.shape[0] else 0)
    if isinstance(codec, Float32Codec):
        return x, np.full(g_count, per * x.element_size(), dtype=np.int64)
    if isinstance(codec, Float16Codec):
        with torch.no_grad():
            decoded = x.detach().to(torch.float16).to(torch.float32)
        return _straight_through(x, decoded), np.full(g_count, 2 * per, dtype=np.int64)
    if isinstance(codec, Int8Codec):
        qmax = (1 << (codec.bits - 1)) - 1
        with torch.no_grad():
            xf = x.detach().to(torch.float32)
            absmax = xf.abs().amax(dim=tuple(range(1, x.dim())), keepdim=True) if per else xf.new_zeros(
                (g_count,) + (1,) * (x.dim() - 1))
            scale = torch.where(absmax > 0, absmax / qmax, torch.ones((), device=x.device))
            decoded = torch.round(xf / scale).clamp_(-qmax, qmax) * scale
        nbytes = per * math.ceil(codec.bits / 8) + 4
        return _straight_through(x, decoded), np.full(g_count, nbytes, dtype=np.int64)
    # a codec that defines its own gradient (the dithered channel: T = mu + s(sigma) * w)
    # gets the live message and gate; every other one is straight-through, as in 0.1
    own_gradient = bool(getattr(codec, "defines_gradient", False))
    rows, sizes = [], np.zeros(g_count, dtype=np.int64)
    for g in range(g_count):
        xg = x[g] if own_gradient else x[g].detach()
        if not bool(torch.isfinite(xg.detach()).all()):
            raise NonFiniteMessage(g)
        enc = codec.encode(xg.cpu(), gate=gates[g] if gates is not None else None,
                           generator=generators[g] if generators is not None else None)
        rows.append(enc.tensor.to(x.device) if own_gradient else enc.tensor.detach().to(x.device))
        sizes[g] = enc.nbytes
    decoded = torch.stack(rows) if rows else x.detach().clone()
    return (decoded if own_gradient and rows else _straight_through(x, decoded)), sizes


@dataclass
class GroupLink:
    """The in-links of a parent group: which child message fills each output row.

    Output row ``k * G + g`` is what parent ``g`` receives on its input slot ``k`` (one
    row per active link).  ``sources``: indices of the groups holding the children's
    messages; ``maps[j]``: (rows in source j, output rows) as long tensors;
    ``edge_of_row``: the global edge index of every output row; ``sink``: the current
    step's backward bytes per edge, which the backward writes (one error per link).
    """

    n_rows: int
    sources: list[int]
    maps: list[tuple[torch.Tensor, torch.Tensor]]
    edge_of_row: np.ndarray          # (n_rows,) global edge index of each output row
    codec: Codec
    sink: np.ndarray | None = None   # (E,) int64, set by the plane every step
    where: tuple[int, int] = (0, 0)  # (epoch, step), set by the plane every step: keys dithered errors

    def __post_init__(self) -> None:
        # output row of each position of cat(selected sources): a plain gather is
        # cat(...).index_select(0, order); and per source, whether its rows are a
        # permutation of all its rows (then its error needs no zeros, only a gather)
        dst = torch.cat([d for _, d in self.maps])
        self.order = torch.empty_like(dst)
        self.order[dst] = torch.arange(len(dst), device=dst.device)
        self.identity = len(self.maps) == 1 and bool((dst == torch.arange(len(dst), device=dst.device)).all())
        self.back = []
        for src, d in self.maps:
            is_perm = bool((torch.sort(src).values == torch.arange(len(src), device=src.device)).all())
            self.back.append(d[torch.argsort(src)] if is_perm else None)


def gather(link: GroupLink, sources: Sequence[torch.Tensor]) -> torch.Tensor:
    """What the parents receive, (rows, B, d); with float32 errors the link needs no function.

    A float32 error is the gradient itself (``numel * 4`` bytes whatever its values), so
    the gather is left to autograd and the sizes are written directly; any other error
    codec goes through :class:`LinkGather`, whose backward codes each link's error.
    """
    if not isinstance(link.codec, Float32Codec):
        return LinkGather.apply(link, *sources)
    first = sources[0]
    if link.sink is not None:
        link.sink[link.edge_of_row] = first[0].numel() * first.element_size()
    picked = [s.index_select(0, rows) for s, (rows, _) in zip(sources, link.maps)]
    if link.identity:
        return picked[0]
    return torch.cat(picked).index_select(0, link.order) if len(picked) > 1 else picked[0].index_select(0, link.order)


class LinkGather(torch.autograd.Function):
    """Forward: gather the children's decoded messages; backward: code each link's error."""

    @staticmethod
    def forward(ctx: Any, link: GroupLink, *sources: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        first = sources[0]
        out = first.new_empty((link.n_rows,) + tuple(first.shape[1:]))        # (G_p, B, d)
        for src, (src_rows, dst_rows) in zip(sources, link.maps):
            out.index_copy_(0, dst_rows, src.index_select(0, src_rows))
        ctx.link = link
        ctx.shapes = [s.shape for s in sources]
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple:  # type: ignore[override]
        link: GroupLink = ctx.link
        generators = None
        if keyed_errors(link.codec):   # each link's dither stream, keyed by where the error crosses
            seed = getattr(link.codec, "seed", 0)
            generators = [error_generator(seed, *link.where, int(e)) for e in link.edge_of_row]
        decoded, nbytes = encode_stack(link.codec, grad.contiguous(), generators=generators)   # one error per link
        if link.sink is not None:
            link.sink[link.edge_of_row] = nbytes
        grads = []
        for shape, (src_rows, dst_rows), back in zip(ctx.shapes, link.maps, link.back):
            if back is not None and len(back) == shape[0]:   # each source row on exactly one link here
                grads.append(decoded.index_select(0, back))
                continue
            g = decoded.new_zeros(shape)
            grads.append(g.index_add_(0, src_rows, decoded.index_select(0, dst_rows)))
        return (None, *grads)
