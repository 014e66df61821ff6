"""Tests of inl_sim.learning.coding: exact round trips, closed-form byte counts, STE gradients,
and entropy-coded sizes against the differential-entropy oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from inl_sim.learning.coding import (
    CODECS, ESCAPE_NBYTES, HEADER_NBYTES, MAX_WINDOW, Bitstream, Encoded, entropy_decode,
    entropy_encode, make_codec,
)
from inl_sim.errors import InlSimError, ScenarioError

I32 = np.iinfo(np.int32)


def _normal(shape: tuple[int, ...], std: float = 1.0, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * std


def _symbol_cases() -> dict[str, np.ndarray]:
    """Hand-made adversarial symbol tables (N, d) int32."""
    rng = np.random.default_rng(1)
    outliers = rng.normal(0, 3, (128, 8)).round().astype(np.int32)
    outliers[5, 2], outliers[77, 0], outliers[127, 7] = 5000, -9000, 40
    extremes = rng.integers(-3, 4, (64, 4)).astype(np.int32)
    extremes[0, 0], extremes[10, 3], extremes[63, 1] = I32.max, I32.min, I32.max - 1
    return {
        "random": rng.normal(0, 20, (256, 16)).round().astype(np.int32),
        "zeros": np.zeros((64, 16), np.int32),
        "constant": np.full((32, 5), -123456, np.int32),
        "single_row": rng.integers(-50, 50, (1, 16)).astype(np.int32),
        "single_value": np.array([[7]], np.int32),
        "single_column": rng.normal(10, 2, (100, 1)).round().astype(np.int32),
        "outliers_in_window": outliers,
        "int32_extremes": extremes,
        "large_range_uniform": rng.integers(I32.min, I32.max, (50, 6), endpoint=True).astype(np.int32),
        "just_wider_than_window": np.array([[0, MAX_WINDOW], [1, -1]], np.int32),
        "bimodal_columns": np.where(rng.random((80, 3)) < 0.5, -1000, 1000).astype(np.int32),
        "empty": np.zeros((0, 4), np.int32),
    }


@pytest.mark.parametrize("name,symbols", list(_symbol_cases().items()))
def test_entropy_round_trip_is_exact(name: str, symbols: np.ndarray) -> None:
    bitstream = entropy_encode(symbols)
    decoded = entropy_decode(bitstream)
    assert decoded.dtype == np.int32 and decoded.shape == symbols.shape
    np.testing.assert_array_equal(decoded, symbols)
    assert bitstream.compressed.dtype == np.uint32
    assert bitstream.nbytes == (HEADER_NBYTES + 6 * symbols.shape[1] + 4 * bitstream.compressed.size
                                + ESCAPE_NBYTES * bitstream.escapes.size)


def test_entropy_encode_rejects_wrong_dtype_or_rank() -> None:
    with pytest.raises(TypeError):
        entropy_encode(np.zeros((4, 4), np.int64))
    with pytest.raises(TypeError):
        entropy_encode(np.zeros(4, np.int32))


def test_escape_is_cheap_and_only_for_out_of_window_symbols() -> None:
    base = np.random.default_rng(2).normal(0, 5, (256, 8)).round().astype(np.int32)
    with_outlier = base.copy()
    with_outlier[3, 3] = 10**9
    plain, escaped = entropy_encode(base), entropy_encode(with_outlier)
    assert plain.escapes.size == 0 and escaped.escapes.tolist() == [10**9]
    # the outlier neither widens the model nor inflates the std: escape bin + raw int32
    assert escaped.nbytes - plain.nbytes <= ESCAPE_NBYTES + 8


def test_constant_tensor_costs_almost_nothing() -> None:
    bitstream = entropy_encode(np.full((1024, 16), 3, np.int32))
    assert 4 * bitstream.compressed.size <= 8


@pytest.mark.parametrize("name,expected", [("float32", 4096), ("float16", 2048), ("int8", 1028)])
def test_fixed_width_bytes_match_closed_form(name: str, expected: int) -> None:
    encoded = make_codec(name).encode(_normal((64, 16)))
    assert isinstance(encoded, Encoded)
    assert (encoded.nbytes, encoded.n_values) == (expected, 1024)
    assert encoded.tensor.shape == (64, 16) and encoded.tensor.dtype == torch.float32


def test_int_codec_bytes_round_bits_up_to_whole_bytes() -> None:
    x = _normal((64, 16))
    assert make_codec("int8", bits=12).encode(x).nbytes == 1024 * 2 + 4
    assert make_codec("int8", bits=4).encode(x).nbytes == 1024 + 4


def test_float32_is_identity() -> None:
    x = _normal((8, 3)).requires_grad_(True)
    assert make_codec("float32").encode(x).tensor is x


@pytest.mark.parametrize("name", sorted(CODECS))
def test_straight_through_gradient_is_identity(name: str) -> None:
    x = _normal((16, 4), std=2.0).requires_grad_(True)
    upstream = _normal((16, 4), seed=3)
    make_codec(name, step=0.25, bits=4).encode(x).tensor.backward(upstream)
    torch.testing.assert_close(x.grad, upstream, rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(CODECS))
def test_codec_names_match_registry_and_no_grad_input_stays_no_grad(name: str) -> None:
    codec = make_codec(name)
    assert codec.name == name
    assert not codec.encode(_normal((4, 4))).tensor.requires_grad


def test_entropy_codec_tensor_is_exactly_the_decoded_message() -> None:
    step = 0.05
    x = _normal((64, 16)).requires_grad_(True)
    encoded = make_codec("entropy_coded", step=step).encode(x)
    symbols = torch.round(x.detach() / step).to(torch.int32).numpy()
    bitstream = entropy_encode(symbols)
    expected = torch.from_numpy(entropy_decode(bitstream)).float() * step
    assert torch.equal(encoded.tensor.detach(), expected)
    assert encoded.nbytes == bitstream.nbytes
    assert (encoded.tensor.detach() - x.detach()).abs().max() <= step / 2 + 1e-6


def test_entropy_codec_handles_1d_and_rejects_non_finite() -> None:
    codec = make_codec("entropy_coded")
    assert codec.encode(_normal((10,))).tensor.shape == (10,)
    with pytest.raises(InlSimError, match="NaN or infinite"):
        codec.encode(torch.tensor([[0.0, float("nan")]]))


def _ideal_nbytes(n_values: int, std: float, step: float) -> float:
    """N*d*(h(N(0, s^2))/ln 2 - log2(step))/8: high-resolution quantisation oracle."""
    h_nats = 0.5 * math.log(2 * math.pi * math.e * std**2)
    return n_values * (h_nats / math.log(2) - math.log2(step)) / 8


def test_entropy_coded_size_shrinks_with_spread_and_matches_entropy() -> None:
    step, shape = 0.05, (4096, 16)
    codec = make_codec("entropy_coded", step=step)
    side = HEADER_NBYTES + 6 * shape[1]
    sizes = []
    for std in (4.0, 2.0, 1.0, 0.5):
        nbytes = codec.encode(_normal(shape, std=std, seed=int(std * 10))).nbytes
        ideal = _ideal_nbytes(shape[0] * shape[1], std, step)
        assert abs(nbytes - side - ideal) <= 0.10 * ideal, (std, nbytes, ideal)
        sizes.append(nbytes)
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 4


def test_int8_error_is_at_most_half_a_scale_step() -> None:
    x = _normal((64, 16), std=3.0)
    for bits in (8, 4):
        decoded = make_codec("int8", bits=bits).encode(x).tensor
        scale = x.abs().max() / (2 ** (bits - 1) - 1)
        assert (decoded - x).abs().max() <= scale / 2 * (1 + 1e-5)
    assert torch.equal(make_codec("int8").encode(torch.zeros(3, 3)).tensor, torch.zeros(3, 3))


def test_unknown_codec_lists_known_ones() -> None:
    with pytest.raises(ScenarioError) as info:
        make_codec("gzip")
    message = str(info.value)
    assert "'gzip'" in message and all(name in message for name in CODECS)


@pytest.mark.parametrize("kwargs", [
    {"step": 0.0}, {"step": -0.1}, {"step": float("nan")}, {"step": float("inf")}, {"step": "0.1"},
    {"bits": 1}, {"bits": 0}, {"bits": 17}, {"bits": 8.0}, {"bits": True},
])
def test_bad_step_or_bits_rejected(kwargs: dict) -> None:
    with pytest.raises(ScenarioError, match="message.(step|bits)"):
        make_codec("entropy_coded", **kwargs)


def test_bitstream_is_frozen() -> None:
    bitstream = entropy_encode(np.zeros((2, 2), np.int32))
    assert isinstance(bitstream, Bitstream)
    with pytest.raises(AttributeError):
        bitstream.offset = 3  # type: ignore[misc]
