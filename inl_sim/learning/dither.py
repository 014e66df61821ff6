"""Dithered codec: bytes that follow the rate of a Gaussian gate.

``entropy_coded`` quantises the *noisy sample* at a fixed step, so it pays for the
gate's private noise: at a small sigma the noise is coded too, at a large one the
step, not the channel, sets the cost.  Subtractive dithered ("universal") quantisation
codes the channel instead (Ziv 1985; Zamir & Feder 1992):

1. per column c of the (B, d) message, the gate's noise level s_c, the geometric mean
   of sigma_bc over the batch (the level whose Gaussian channel has the batch's mean
   log-sigma, hence about its rate), sent as one byte on a log grid 2^(1/16) apart, sets
   the step Delta_c = sqrt(12) s_c: the uniform quantisation noise has variance s_c^2;
2. a dither u ~ U(-Delta/2, Delta/2) is drawn from a generator that sender and receiver
   derive from a shared seed (the run seed and the message's index on its link); it is
   never transmitted;
3. the symbols k = round((mu + u) / Delta) of the gate's *mean* are range-coded with
   ``constriction``, each under p(k | u) = P(round((mu + u) / Delta) = k) for
   mu ~ N(m_c, v_c) (a quantised Gaussian with mean (m_c + u) / Delta and std
   sqrt(v_c) / Delta).  The model comes from the sending gate's learned prior
   N(m, v) on T (:func:`prior_model`: v_c = v - s_c^2), which both ends hold (its
   parameters travel once per link, counted as ``rate_prior_nbytes``); without a gate
   the batch's own mean (float32) and std (float16) travel with the message;
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
cols, window offset, window width), per column 1 byte (the noise code) plus, without a
shared prior, 6 bytes (m float32, std float16), the range coder's 32-bit words, and 4
bytes per escaped symbol (outside a window of ``MAX_WINDOW`` symbols, as in
``entropy_coded``).  With a message of B rows and d columns under a shared prior the
side information is (16 + d) * 8 / B bits per sample plus under 32 bits of word padding
per message: the documented overhead of the oracle test.

Caveat: the gate's prior is a moving average that drifts during training; the receiver
is assumed to track it (a link that resent it at every change would pay 8 d bytes per
resend, e.g. once per epoch: negligible beside the messages).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from inl_sim.errors import InlSimError
from inl_sim.learning.coding import (ESCAPE_NBYTES, HEADER_NBYTES, MAX_ABS_SYMBOL, Encoded,
                                     _constriction, _window)

if TYPE_CHECKING:
    from inl_sim.learning.gating import GateOutput

__all__ = ["DitheredCodec", "DitheredBitstream", "dithered_encode", "dithered_decode", "dither_generator",
           "prior_model", "quantise_noise", "noise_from_code", "SQRT12"]

SQRT12 = math.sqrt(12.0)
ERROR_STREAM = 0x45525252     # spawn key of the errors' dither streams ("ERRR")
NOISE_LEVELS_PER_OCTAVE = 16   # the noise level travels as one byte: s = 2^(code / 16 - 8)
MODEL_NBYTES_PER_COLUMN = 6    # model sent with the message when no prior is shared: m float32 + std float16
MODEL_STD_FLOOR = 0.02         # in symbol units: keeps every in-window symbol codable


def quantise_noise(noise: np.ndarray) -> np.ndarray:
    """(d,) noise levels -> (d,) uint8 codes on a log grid (2^(1/16) apart, 2^-8 .. 2^8)."""
    code = np.round((np.log2(np.maximum(noise, 1e-30)) + 8.0) * NOISE_LEVELS_PER_OCTAVE)
    return np.clip(code, 0, 255).astype(np.uint8)


def noise_from_code(code: np.ndarray) -> np.ndarray:
    return np.exp2(code.astype(np.float64) / NOISE_LEVELS_PER_OCTAVE - 8.0)


@dataclass(frozen=True, eq=False)
class DitheredBitstream:
    """Range-coded dithered symbols and the side information the receiver needs."""

    compressed: np.ndarray   # (n_words,) uint32
    means: np.ndarray        # (d,) float32: model mean m_c of mu per column
    stds: np.ndarray         # (d,) float16: model std of mu per column
    noise_code: np.ndarray   # (d,) uint8: noise level s_c; the step is sqrt(12) * s_c
    escapes: np.ndarray      # (n_escapes,) int32
    offset: int
    width: int
    shape: tuple[int, int]
    model_sent: bool = True  # False when the model comes from the gate's shared prior

    @property
    def steps(self) -> np.ndarray:
        """(d,) float64 step Delta_c, from the transmitted noise code."""
        return SQRT12 * noise_from_code(self.noise_code)

    @property
    def nbytes(self) -> int:
        cols = self.shape[1]
        return (HEADER_NBYTES + cols + (MODEL_NBYTES_PER_COLUMN * cols if self.model_sent else 0)
                + 4 * self.compressed.size + ESCAPE_NBYTES * self.escapes.size)


def dither_generator(seed: int, index: int) -> torch.Generator:
    """The shared dither stream of message ``index``: both ends derive it, nobody sends it."""
    return torch.Generator().manual_seed((seed * 2_654_435_761 + index * 40_503 + 12_345) % (2 ** 63 - 1))


def error_generator(seed: int, epoch: int, step: int, edge: int) -> torch.Generator:
    """The dither stream of the error on training-graph edge ``edge`` at (epoch, step).

    Keyed by where the error crosses, not by how many errors were coded before it, so
    every engine (whatever order it codes a step's errors in) draws the same dither.
    """
    state = np.random.SeedSequence([int(seed), int(epoch), int(step), int(edge), ERROR_STREAM]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))


def keyed_errors(codec: object) -> bool:
    """Whether ``codec`` draws per-message dither, so its errors need :func:`error_generator`."""
    return isinstance(codec, DitheredCodec)


def _model(b: DitheredBitstream, dither: np.ndarray) -> tuple[object, np.ndarray, np.ndarray]:
    """Per-symbol quantised-Gaussian parameters p(k | u), from values both ends hold."""
    family = _constriction().stream.model.QuantizedGaussian(0, b.width)
    steps = b.steps                                                     # (d,)
    means = (b.means.astype(np.float64) + dither) / steps - b.offset    # (N, d) symbol units
    stds = np.broadcast_to(np.maximum(b.stds.astype(np.float64) / steps, MODEL_STD_FLOOR), dither.shape)
    return family, np.ascontiguousarray(means.ravel()), np.ascontiguousarray(stds.ravel())


def dithered_encode(mu: np.ndarray, noise: np.ndarray, dither_unit: np.ndarray,
                    model: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[DitheredBitstream, np.ndarray]:
    """Code an (N, d) mean with per-column noise level ``noise`` and dither u = Delta * ``dither_unit``.

    ``dither_unit`` is (N, d) uniform on [-1/2, 1/2).  ``model`` (mean, std) of mu per
    column, when sender and receiver share it (the gate's prior); otherwise the batch's
    own mean and std are sent.  Returns the bitstream and the reconstruction
    T = k Delta - u (float64, (N, d)) that the receiver decodes.
    """
    rows, cols = mu.shape
    code = quantise_noise(noise)
    steps = SQRT12 * noise_from_code(code)                               # (d,)
    u = dither_unit.astype(np.float64) * steps                          # (N, d)
    scaled = (mu.astype(np.float64) + u) / steps
    if not np.isfinite(scaled).all():
        raise InlSimError("dithered: message has NaN or infinite values (training diverged); "
                          "lower training.lr or use message.encoding: float32 to inspect")
    symbols = np.clip(np.round(scaled), -MAX_ABS_SYMBOL, MAX_ABS_SYMBOL).astype(np.int64)   # (N, d)
    decoded = symbols * steps - u
    if model is None:
        means = mu.mean(0).astype(np.float32) if rows else np.zeros(cols, np.float32)
        stds = (mu.std(0) if rows else np.ones(cols)).astype(np.float16)
    else:
        means, stds = model[0].astype(np.float32), model[1].astype(np.float16)
    empty = np.zeros(0, np.int32)
    if rows * cols == 0:
        return DitheredBitstream(np.zeros(0, np.uint32), means, stds, code, empty, 0, 1, (rows, cols),
                                 model is None), decoded
    offset, width = _window(symbols.astype(np.int32))
    rel = symbols - offset
    outside = (rel < 0) | (rel >= width)
    partial = DitheredBitstream(np.zeros(0, np.uint32), means, stds, code, symbols[outside].astype(np.int32),
                                offset, width, (rows, cols), model is None)
    family, m, s = _model(partial, u)
    encoder = _constriction().stream.queue.RangeEncoder()
    encoder.encode(np.where(outside, width, rel).astype(np.int32).ravel(), family, m, s)
    return dataclasses.replace(partial, compressed=encoder.get_compressed()), decoded


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


def prior_model(prior: tuple[torch.Tensor, torch.Tensor], noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of mu per column from the gate's prior N(m, v) on T: v = Var(mu) + noise^2.

    Var(mu) = v - s^2, floored at (s / 10)^2 where the prior is narrower than the noise.
    """
    m = prior[0].detach().double().numpy()
    v = prior[1].detach().double().exp().numpy()
    return m, np.sqrt(np.maximum(v - noise ** 2, (0.1 * noise) ** 2))


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
    #: the decoded message carries the channel's own gradient (to mu and sigma), not a
    #: straight-through one: the learning plane hands it the live message and gate output
    defines_gradient = True
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
        if sigma is not None:   # geometric mean: the noise level whose log is the mean log sigma
            noise = sigma.reshape(rows, cols).clamp_min(1e-30).log().mean(0).exp()    # (d,)
        else:
            noise = torch.full((cols,), self.step / SQRT12, dtype=mu.dtype)
        noise_np = noise.detach().double().numpy()
        model = prior_model(gate.prior, noise_np) if gate is not None and gate.prior is not None else None
        unit = torch.rand((rows, cols), generator=generator, dtype=torch.float64) - 0.5   # (N, d)
        bits, decoded = dithered_encode(mu2.detach().double().numpy(), noise_np, unit.numpy(), model)
        t = torch.from_numpy(decoded).to(mu.dtype)                                      # (N, d)
        if mu.requires_grad or (sigma is not None and sigma.requires_grad):
            # reparameterised uniform channel: T = mu + s(sigma) * w, w held fixed
            s_used = torch.from_numpy(noise_from_code(bits.noise_code)).to(mu.dtype)   # (d,)
            w = (t - mu2.detach()) / s_used
            t = t + (mu2 - mu2.detach()) + ((noise - noise.detach()) * w if sigma is not None else 0.0)
        return Encoded(t.reshape(x.shape), bits.nbytes, x.numel())
