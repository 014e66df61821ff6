"""Codecs: how a tensor is put on the wire, and how many bytes that takes.

Every message that crosses a link (an activation forward, an error backward) passes a
codec; the ledger records :attr:`Encoded.nbytes`, so byte totals are the sizes a real
implementation would send, not an estimate.  A codec returns what the receiver decodes
(``Encoded.tensor``), differentiable with respect to the input by a straight-through
estimator wherever it rounds, so a node can still backpropagate through its own message.

* ``float32``: identity, ``numel * element_size`` bytes.  Hot path: does nothing else.
* ``float16``: half precision, 2 bytes per value.
* ``int8``: symmetric per-tensor absmax scaling to ``bits``-bit signed integers,
  ``ceil(bits / 8)`` bytes per value + a float32 scale.
* ``dithered``: subtractive dithered quantisation of a Gaussian gate's mean at a step
  tied to its sigma, range-coded (``inl_sim.learning.dither``): bytes follow I(Z;T).
* ``entropy_coded``: uniform scalar quantisation with a *fixed* step, then range coding
  of the integer symbols with a per-column quantised-Gaussian model.  Because the step is
  not rescaled per tensor, a latent with a smaller spread costs fewer bytes: this is what
  makes a rate-penalised gate shrink the byte ledger, not only the rate estimate.

Wire format of ``entropy_coded`` (all of it counted in ``nbytes``): a 16-byte header
(rows, cols, window offset, window width), per column a float32 mean and a float16 std
of the symbols (6 bytes), the range coder's 32-bit words, and 4 bytes per escaped
symbol.  Symbols are coded relative to a window of at most ``MAX_WINDOW`` integers so the
model's support stays within constriction's 24-bit probability precision; the rare
symbol outside it is coded as an escape bin and sent raw, so every int32 round-trips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np
import torch

from inl_sim.errors import InlSimError, ScenarioError, field_error

__all__ = [
    "Encoded", "Codec", "Float32Codec", "Float16Codec", "Int8Codec", "EntropyCodec",
    "Bitstream", "entropy_encode", "entropy_decode", "CODECS", "make_codec",
    "HEADER_NBYTES", "MAX_WINDOW",
]

HEADER_NBYTES = 16          # rows u32, cols u32, window offset i32, window width u32
SIDE_NBYTES_PER_COLUMN = 6  # mean float32 + std float16
ESCAPE_NBYTES = 4           # one raw int32 per symbol outside the window
MAX_WINDOW = 1 << 16        # model support <= 2**16 + 1 symbols, far below 2**24
STD_FLOOR = 0.05            # a constant column still needs std > 0 (in symbol units)
MAX_ABS_SYMBOL = 1 << 30    # saturation of round(x / step); exact in float32
MAX_BITS = 16


@dataclass(frozen=True, slots=True)
class Encoded:
    """What the receiver gets and what it cost on the wire."""

    tensor: torch.Tensor   # decoded message, same shape as the input (B, d)
    nbytes: int            # payload + side information + header
    n_values: int          # numel of the input


class Codec(Protocol):
    """A wire format: ``encode(x, *, gate=None, generator=None)`` -> :class:`Encoded`.

    ``gate`` is the sending node's ``GateOutput`` (a codec may need the gate's noise
    scale) and ``generator`` the sending node's own ``torch.Generator`` (for codecs that
    draw, e.g. shared dither); both engines pass them, codecs that need neither ignore them.
    """

    name: str

    def encode(self, x: torch.Tensor, *, gate: Any = None, generator: torch.Generator | None = None) -> Encoded:
        """``gate``: the sender's GateOutput (mu, sigma, prior) for codecs that code the
        channel; ``generator``: shared randomness (dither).  Codecs that need neither ignore them."""
        ...


def _straight_through(x: torch.Tensor, decoded: torch.Tensor) -> torch.Tensor:
    """Forward value exactly ``decoded``, gradient identity to ``x``.

    ``decoded + (x - x.detach())`` adds an exact zero, so the receiver sees the decoded
    values bit for bit, while autograd sees ``d out / d x = I``.
    """
    if not x.requires_grad:
        return decoded
    return decoded.detach() + (x - x.detach())


# ---------------------------------------------------------------------- fixed width
@dataclass(frozen=True)
class Float32Codec:
    """Identity: the tensor as it is, ``numel * element_size`` bytes."""

    name = "float32"

    def encode(self, x: torch.Tensor, *, gate: Any = None, generator: torch.Generator | None = None) -> Encoded:
        n = x.numel()
        return Encoded(x, n * x.element_size(), n)


@dataclass(frozen=True)
class Float16Codec:
    """Half precision on the wire, float32 again at the receiver."""

    name = "float16"

    def encode(self, x: torch.Tensor, *, gate: Any = None, generator: torch.Generator | None = None) -> Encoded:
        with torch.no_grad():
            decoded = x.detach().to(torch.float16).to(torch.float32)
        return Encoded(_straight_through(x, decoded), 2 * x.numel(), x.numel())


@dataclass(frozen=True)
class Int8Codec:
    """Symmetric per-tensor absmax quantisation to ``bits``-bit signed integers.

    The scale ``absmax / (2**(bits-1) - 1)`` travels as a float32, so the error of each
    value is at most ``scale / 2``; an all-zero tensor uses scale 1 (any scale is exact).
    """

    bits: int = 8
    name = "int8"

    def encode(self, x: torch.Tensor, *, gate: Any = None, generator: torch.Generator | None = None) -> Encoded:
        qmax = (1 << (self.bits - 1)) - 1
        with torch.no_grad():
            xf = x.detach().to(torch.float32)
            absmax = xf.abs().max() if xf.numel() else torch.zeros(())
            scale = torch.where(absmax > 0, absmax / qmax, torch.ones(()))   # () float32
            decoded = torch.round(xf / scale).clamp_(-qmax, qmax) * scale     # same shape as x
        nbytes = x.numel() * math.ceil(self.bits / 8) + 4
        return Encoded(_straight_through(x, decoded), nbytes, x.numel())


# ---------------------------------------------------------------------- entropy coding
@dataclass(frozen=True, eq=False)
class Bitstream:
    """A range-coded (N, d) int32 symbol array with everything needed to decode it."""

    compressed: np.ndarray   # (n_words,) uint32, range coder output
    means: np.ndarray        # (d,) float32, column mean of symbol - offset
    stds: np.ndarray         # (d,) float16, column std of symbol - offset (>= STD_FLOOR)
    escapes: np.ndarray      # (n_escapes,) int32, raw symbols outside the window
    offset: int              # window start (int32)
    width: int               # window size W; coded values are 0..W-1, W is the escape
    shape: tuple[int, int]   # (N, d)

    @property
    def nbytes(self) -> int:
        """Bytes on the wire: header + per-column model + coded words + escapes."""
        return (HEADER_NBYTES + SIDE_NBYTES_PER_COLUMN * self.shape[1]
                + 4 * self.compressed.size + ESCAPE_NBYTES * self.escapes.size)


def _constriction() -> Any:
    """Import constriction lazily: only ``entropy_coded`` needs it."""
    try:
        import constriction
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise InlSimError("message.encoding: 'entropy_coded' needs the constriction package; "
                          "pip install constriction==0.5.0") from exc
    return constriction


def _model_params(b: Bitstream) -> tuple[object, np.ndarray, np.ndarray]:
    """The model family and per-symbol (row-major) mean/std, from stored values only.

    Encoder and decoder both call this on the bitstream, so they use bit-identical
    parameters (the float16 std, not the float64 one it was rounded from).
    """
    family = _constriction().stream.model.QuantizedGaussian(0, b.width)
    rows = b.shape[0]
    means = np.tile(b.means.astype(np.float64), rows)   # (N*d,)
    stds = np.tile(b.stds.astype(np.float64), rows)     # (N*d,)
    return family, means, stds


def _window(symbols: np.ndarray) -> tuple[int, int]:
    """Offset and width of the coded window: the whole range, or MAX_WINDOW round the median.

    Choosing the median keeps the bulk inside when a few outliers stretch the range.
    """
    lo, hi = int(symbols.min()), int(symbols.max())
    if hi - lo + 1 <= MAX_WINDOW:
        return lo, hi - lo + 1
    start = int(np.median(symbols)) - MAX_WINDOW // 2
    return max(start, int(np.iinfo(np.int32).min)), MAX_WINDOW


def _column_model(rel: np.ndarray, outside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean (float32) and std (float16, >= STD_FLOOR) of the in-window symbols.

    The sample mean and std are the Gaussian parameters of least cross-entropy, i.e. of
    least expected code length; escapes are left out so they cannot inflate the std.
    """
    inside = ~outside                                              # (N, d)
    count = np.maximum(inside.sum(axis=0), 1)                      # (d,)
    values = np.where(inside, rel, 0).astype(np.float64)           # (N, d)
    mean = values.sum(axis=0) / count                              # (d,)
    var = (np.where(inside, values - mean, 0.0) ** 2).sum(axis=0) / count
    std = np.clip(np.sqrt(var), STD_FLOOR, None)
    return mean.astype(np.float32), std.astype(np.float16)


def entropy_encode(symbols: np.ndarray) -> Bitstream:
    """Range-code an (N, d) int32 array with a per-column quantised-Gaussian model.

    Column statistics are taken over the symbols inside the window, so an outlier
    neither widens the model nor inflates its std; it costs one escape bin plus 4 bytes.

    Parameters
    ----------
    symbols : np.ndarray
        (N, d) int32 integer symbols, typically ``round(x / step)``.

    Returns
    -------
    Bitstream
        Exactly invertible by :func:`entropy_decode`; ``.nbytes`` is its wire size.
    """
    constriction = _constriction()
    if symbols.ndim != 2 or symbols.dtype != np.int32:
        raise TypeError(f"symbols must be a 2-D int32 array, got {symbols.ndim}-D {symbols.dtype}")
    rows, cols = symbols.shape
    if symbols.size == 0:
        empty = np.zeros(0, np.uint32)
        return Bitstream(empty, np.zeros(cols, np.float32), np.ones(cols, np.float16),
                         np.zeros(0, np.int32), 0, 1, (rows, cols))
    offset, width = _window(symbols)
    rel = symbols.astype(np.int64) - offset                       # (N, d)
    outside = (rel < 0) | (rel >= width)                          # (N, d)
    means, stds = _column_model(rel, outside)
    coded = np.where(outside, width, rel).astype(np.int32).ravel()  # (N*d,)
    escapes = symbols[outside].astype(np.int32)                     # row-major order
    partial = Bitstream(np.zeros(0, np.uint32), means, stds, escapes, offset, width, (rows, cols))
    family, mu, sigma = _model_params(partial)
    encoder = constriction.stream.queue.RangeEncoder()
    encoder.encode(coded, family, mu, sigma)
    return Bitstream(encoder.get_compressed(), means, stds, escapes, offset, width, (rows, cols))


def entropy_decode(bitstream: Bitstream) -> np.ndarray:
    """Invert :func:`entropy_encode`: the exact (N, d) int32 symbols."""
    constriction = _constriction()
    rows, cols = bitstream.shape
    if rows * cols == 0:
        return np.zeros((rows, cols), np.int32)
    family, mu, sigma = _model_params(bitstream)
    decoder = constriction.stream.queue.RangeDecoder(bitstream.compressed)
    coded = decoder.decode(family, mu, sigma).astype(np.int64)     # (N*d,)
    out = coded + bitstream.offset
    escaped = coded == bitstream.width
    out[escaped] = bitstream.escapes
    return out.astype(np.int32).reshape(rows, cols)


@dataclass(frozen=True)
class EntropyCodec:
    """Fixed-step uniform quantisation + range coding (see the module docstring).

    A fixed ``step`` makes the coded size track the spread of the message: N(0, s^2)
    values cost about ``h(N(0, s^2)) / ln 2 - log2(step)`` bits each.
    """

    step: float = 0.05
    name = "entropy_coded"

    def encode(self, x: torch.Tensor, *, gate: Any = None, generator: torch.Generator | None = None) -> Encoded:
        with torch.no_grad():
            scaled = x.detach().to(torch.float32) / self.step
            if not bool(torch.isfinite(scaled).all()):
                raise InlSimError(
                    "entropy_coded: message has NaN or infinite values (training diverged); "
                    "lower training.lr or use message.encoding: float32 to inspect")
            symbols = torch.round(scaled).clamp_(-MAX_ABS_SYMBOL, MAX_ABS_SYMBOL)  # same shape as x
            decoded = symbols * self.step
        cols = x.shape[-1] if x.dim() >= 2 else 1
        rows = x.numel() // cols if cols else 0
        table = symbols.to(torch.int32).reshape(rows, cols).numpy()   # (N, d)
        nbytes = entropy_encode(table).nbytes
        return Encoded(_straight_through(x, decoded), nbytes, x.numel())


# ---------------------------------------------------------------------- registry
def _dithered(*, step: float, bits: int, seed: int = 0) -> Codec:
    from inl_sim.learning.dither import DitheredCodec   # dither imports this module
    return DitheredCodec(seed=seed, step=step)


CODECS: dict[str, Callable[..., Codec]] = {
    "float32": lambda *, step, bits, seed=0: Float32Codec(),
    "float16": lambda *, step, bits, seed=0: Float16Codec(),
    "int8": lambda *, step, bits, seed=0: Int8Codec(bits=bits),
    "entropy_coded": lambda *, step, bits, seed=0: EntropyCodec(step=step),
    "dithered": _dithered,
}


def make_codec(name: str, *, step: float = 0.05, bits: int = 8, field: str = "message.encoding",
               seed: int = 0) -> Codec:
    """Build the codec called ``name`` (``message.encoding`` / ``message.grad_encoding``).

    ``step`` (entropy_coded) must be a finite number > 0; ``bits`` (int8) an integer in
    2..16.  Both are checked for every codec so a typo is caught even where unused.
    """
    if name not in CODECS:
        raise field_error(ScenarioError, field, name, "is not a known codec",
                          f"use one of {sorted(CODECS)}")
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not (math.isfinite(step) and step > 0):
        raise field_error(ScenarioError, "message.step", step, "must be a finite number > 0",
                          "give the quantisation step, e.g. 0.05")
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= MAX_BITS:
        raise field_error(ScenarioError, "message.bits", bits, f"must be an integer in 2..{MAX_BITS}",
                          "use e.g. 8")
    return CODECS[name](step=float(step), bits=bits, seed=seed)
