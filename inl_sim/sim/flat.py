"""One contiguous buffer for the learning plane's parameters, and one for their gradients.

Adam and SGD act on every element independently, with one step counter per parameter
that all of the plane's parameters share (they are all stepped every step).  Stepping
ONE flat tensor is therefore the same arithmetic as stepping each node's tensors, but it
costs a handful of kernels per step instead of a handful per tensor: on the 9-node
quickstart (132 stacked tensors) the optimiser went from about 40 % of a training step
to a few per cent (BENCHMARKS.md, issue #7).

How the parameters stay what the groups and modules see: each stacked parameter becomes
a leaf :class:`~torch.nn.Parameter` that is a *view* of the flat buffer, and its ``.grad``
a view of the flat gradient buffer.  Autograd adds each step's gradient into an existing
``.grad`` in place, so after ``backward`` the flat gradient holds every parameter's
gradient, and the optimiser's in-place update of the flat buffer is seen through every view
(and through the node modules' rows of them).  Gradients are zeroed in place, never set to
``None``, or the views would come apart from the buffer.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["FlatParameters"]


class FlatParameters:
    """``params`` (leaf tensors of one device and dtype) copied into one buffer.

    :attr:`views` are the replacement parameters, in the order given; :attr:`flat` is the
    one tensor the optimiser steps.  The old tensors are left untouched (and unused).
    """

    def __init__(self, params: Sequence[torch.Tensor]) -> None:
        if not params:
            raise ValueError("FlatParameters needs at least one parameter")
        kinds = {(p.device, p.dtype) for p in params}
        if len(kinds) != 1:
            raise ValueError(f"FlatParameters needs one device and dtype, got {sorted(map(str, kinds))}")
        device, dtype = kinds.pop()
        total = sum(p.numel() for p in params)
        data = torch.empty(total, device=device, dtype=dtype)
        grad = torch.zeros(total, device=device, dtype=dtype)
        self.views: list[nn.Parameter] = []
        offset = 0
        with torch.no_grad():
            for p in params:
                n = p.numel()
                data[offset:offset + n].copy_(p.detach().reshape(-1))
                view = nn.Parameter(data[offset:offset + n].view(p.shape))   # shares the buffer
                view.grad = grad[offset:offset + n].view(p.shape)
                self.views.append(view)
                offset += n
        self.flat = nn.Parameter(data)
        self.flat.grad = grad

    def __len__(self) -> int:
        return self.flat.numel()

    def zero_grad(self) -> None:
        """Zero every gradient in place (one kernel); the views keep pointing into the buffer."""
        self.flat.grad.zero_()

    def owns(self, tensor: torch.Tensor) -> bool:
        """Whether ``tensor``'s elements lie in the parameter or the gradient buffer."""
        return any(_within(buffer, tensor) for buffer in (self.flat, self.flat.grad))


def _within(buffer: torch.Tensor, tensor: torch.Tensor) -> bool:
    lo = buffer.data_ptr()
    start = tensor.data_ptr()
    return lo <= start and start + tensor.numel() * tensor.element_size() <= lo + buffer.numel() * buffer.element_size()
