"""Dithered codec: bytes that follow the rate of a Gaussian gate.

``entropy_coded`` quantises the *noisy sample* at a fixed step, so it pays for the
gate's private noise: at a small sigma the noise is coded too, at a large one the
step, not the channel, sets the cost.  Subtractive dithered ("universal") quantisation
codes the channel instead (Ziv 1985; Zamir & Feder 1992):

1. per column c of the (B, d) message, the gate's noise level
   s_c = sqrt(mean_b sigma_bc^2) (sent as float16) sets the step Delta_c = sqrt(12) s_c,
   so the uniform quantisation noise has the gate's (batch-mean) variance;
2. a dither u ~ U(-Delta/2, Delta/2) is drawn from a generator that sender and receiver
   derive from a shared seed (the run seed and the message's index on its link); it is
   never transmitted;
3. the symbols k = round((mu + u) / Delta) of the gate's *mean* are range-coded with
   ``constriction``, each under p(k | u) = P(round((mu + u) / Delta) = k) for
   mu ~ N(m_c, v_c) (a quantised Gaussian with mean (m_c + u) / Delta and std
   sqrt(v_c) / Delta; m_c as float32 and sqrt(v_c) as float16, per column);
4. the receiver reconstructs T = k Delta - u = mu + e, where e is uniform on
   (-Delta/2, Delta/2) and independent of mu (the defining property of subtractive
   dither).

The coded size is then about H(K | U) = I(mu; mu + e) bits per value: for a Gaussian
mu it lies between the Gaussian channel's I(Z;T) and I(Z;T) + 1/2 log2(pi e / 6)
(0.254 bits, the space-filling loss of a scalar quantiser), plus the model mismatch
and the side information below.  Gradients are the reparameterisation of that uniform
channel, T = mu + s(sigma) * w with w = e / s held fixed: identity to mu, and
``w`` times d s / d sigma to sigma (straight-through; the forward value is exactly T).

Wire format (all of it in ``nbytes``): the 16-byte header of ``entropy_coded`` (rows,
cols, window offset, window width), per column 8 bytes (m float32, sqrt(v) float16,
s float16), the range coder's 32-bit words, and 4 bytes per escaped symbol (outside a
window of ``MAX_WINDOW`` symbols, as in ``entropy_coded``).  With a message of B rows
and d columns that side information is (16 + 8 d) * 8 / B bits per sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from inl_sim.errors import InlSimError
from inl_sim.learning.coding import (ESCAPE_NBYTES, HEADER_NBYTES, MAX_ABS_SYMBOL, MAX_WINDOW, Encoded,
                                     _constriction, _window)

if TYPE_CHECKING:
    from inl_sim.learning.gating import GateOutput

__all__ = ["DitheredCodec", "DitheredBitstream", "dithered_encode", "dithered_decode", "dither_generator",
           "SIDE_NBYTES_PER_COLUMN", "SQRT12"]

SQRT12 = math.sqrt(12.0)
SIDE_NBYTES_PER_COLUMN = 8   # m float32 + sqrt(v) float16 + noise level s float16
MODEL_STD_FLOOR = 0.02       # in symbol units: keeps every in-window symbol codable
NOISE_FLOOR = 1e-4           # smallest noise level s (a float16 normal number)


@dataclass(frozen=True, eq=False)
class DitheredBitstream:
    """Range-coded dithered symbols and the side information the receiver needs."""

    compressed: np.ndarray   # (n_words,) uint32
    means: np.ndarray        # (d,) float32: m_c, mean of mu per column
    stds: np.ndarray         # (d,) float16: sqrt(v_c), std of mu per column
    noise: np.ndarray        # (d,) float16: s_c; the step is sqrt(12) * s_c
    escapes: np.ndarray      # (n_escapes,) int32
    offset: int
    width: int
    shape: tuple[int, int]

    @property
    def steps(self) -> np.ndarray:
        """(d,) float64 step Delta_c, computed from the transmitted float16 noise level."""
        return SQRT12 * self.noise.astype(np.float64)

    @property
    def nbytes(self) -> int:
        return (HEADER_NBYTES + SIDE_NBYTES_PER_COLUMN * self.shape[1]
                + 4 * self.compressed.size + ESCAPE_NBYTES * self.escapes.size)


def dither_generator(seed: int, index: int) -> torch.Generator:
    """The shared dither stream of message ``index``: both ends derive it, nobody sends it."""
    return torch.Generator().manual_seed((seed * 2_654_435_761 + index * 40_503 + 12_345) % (2 ** 63 - 1))


def _model(b: DitheredBitstream, dither: np.ndarray) -> tuple[object, np.ndarray, np.ndarray]:
    """Per-symbol quantised-Gaussian parameters p(k | u), from transmitted values only."""
    family = _constriction().stream.model.QuantizedGaussian(0, b.width)
    steps = b.steps                                                     # (d,)
    means = (b.means.astype(np.float64) + dither) / steps - b.offset    # (N, d) symbol units
    stds = np.broadcast_to(np.maximum(b.stds.astype(np.float64) / steps, MODEL_STD_FLOOR), dither.shape)
    return family, np.ascontiguousarray(means.ravel()), np.ascontiguousarray(stds.ravel())


def dithered_encode(mu: np.ndarray, noise: np.ndarray, dither_unit: np.ndarray) -> tuple[DitheredBitstream, np.ndarray]:
    """Code an (N, d) float mean with per-column noise level ``noise`` and dither u = Delta * ``dither_unit``.

    ``dither_unit`` is (N, d) uniform on [-1/2, 1/2).  Returns the bitstream and the
    reconstruction T = k Delta - u (float64, (N, d)) the receiver decodes.
    """
    rows, cols = mu.shape
    noise16 = np.maximum(noise, NOISE_FLOOR).astype(np.float16)
    steps = SQRT12 * noise16.astype(np.float64)                          # (d,)
    u = dither_unit.astype(np.float64) * steps                          # (N, d)
    scaled = (mu.astype(np.float64) + u) / steps
    if not np.isfinite(scaled).all():
        raise InlSimError("dithered: message has NaN or infinite values (training diverged); "
                          "lower training.lr or use message.encoding: float32 to inspect")
    symbols = np.clip(np.round(scaled), -MAX_ABS_SYMBOL, MAX_ABS_SYMBOL).astype(np.int64)   # (N, d)
    decoded = symbols * steps - u
    means = mu.mean(0).astype(np.float32) if rows else np.zeros(cols, np.float32)
    stds = (mu.std(0) if rows else np.ones(cols)).astype(np.float16)
    if rows * cols == 0:
        return DitheredBitstream(np.zeros(0, np.uint32), means, stds, noise16, np.zeros(0, np.int32),
                                 0, 1, (rows, cols)), decoded
    offset, width = _window(symbols.astype(np.int32))
    rel = symbols - offset
    outside = (rel < 0) | (rel >= width)
    escapes = symbols[outside].astype(np.int32)
    partial = DitheredBitstream(np.zeros(0, np.uint32), means, stds, noise16, escapes, offset, width, (rows, cols))
    family, m, s = _model(partial, u)
    encoder = _constriction().stream.queue.RangeEncoder()
    encoder.encode(np.where(outside, width, rel).astype(np.int32).ravel(), family, m, s)
    return DitheredBitstream(encoder.get_compressed(), means, stds, noise16, escapes, offset, width,
                             (rows, cols)), decoded


def dithered_decode(b: DitheredBitstream, dither_unit: np.ndarray) -> np.ndarray:
    """The receiver: regenerate u from the shared stream, decode k, return T = k Delta - u."""
    rows, cols = b.shape
    u = dither_unit.astype(np.float64) * b.steps
    if rows * cols == 0:
        return np.zeros((rows, cols))
    family, m, s = _model(b, u)
    coded = _constriction().stream.queue.RangeDecoder(b.compressed).decode(family, m, s).astype(np.int64)
    symbols = coded + b.offset
    symbols[coded == b.width] = b.escapes
    return symbols.reshape(rows, cols) * b.steps - u


@dataclass(eq=False)
class DitheredCodec:
    """``message.encoding: dithered`` (see the module docstring).

    ``seed`` is the run seed; message i of this codec draws its dither from
    :func:`dither_generator` (seed, i) unless the caller passes ``generator``.  Each
    node's message is coded on its own (``per_node``): its step and model are its own.
    """

    seed: int = 0
    step: float = 0.05   # step used when no Gaussian gate describes the message
    name = "dithered"
    per_node = True
    _count: int = field(default=0, repr=False)

    def encode(self, x: torch.Tensor, *, gate: GateOutput | None = None,
               generator: torch.Generator | None = None) -> Encoded:
        if generator is None:
            generator, self._count = dither_generator(self.seed, self._count), self._count + 1
        cols = x.shape[-1] if x.dim() >= 2 else 1
        rows = x.numel() // cols if cols else 0
        mu = gate.mu if gate is not None and gate.mu is not None else x
        sigma = gate.sigma if gate is not None and gate.mu is not None else None
        mu2 = mu.reshape(rows, cols)                                                   # (N, d)
        noise = (sigma.reshape(rows, cols).square().mean(0).sqrt() if sigma is not None  # (d,)
                 else torch.full((cols,), self.step / SQRT12, dtype=mu.dtype))
        unit = torch.rand((rows, cols), generator=generator, dtype=torch.float64) - 0.5   # (N, d)
        bits, decoded = dithered_encode(mu2.detach().double().numpy(), noise.detach().double().numpy(),
                                        unit.numpy())
        t = torch.from_numpy(decoded).to(mu.dtype)                                      # (N, d)
        if mu.requires_grad or (sigma is not None and sigma.requires_grad):
            # reparameterised uniform channel: T = mu + s(sigma) * w, w held fixed
            s_used = torch.from_numpy(bits.noise.astype(np.float64)).to(mu.dtype)      # (d,)
            w = (t - mu2.detach()) / s_used
            t = t + (mu2 - mu2.detach()) + ((noise - noise.detach()) * w if sigma is not None else 0.0)
        return Encoded(t.reshape(x.shape), bits.nbytes, x.numel())
