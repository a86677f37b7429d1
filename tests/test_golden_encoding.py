"""Input encoders: determinism, chunk invariance, rates, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from golden.core.errors import SnnCosimError
from golden.simulation.encoding import direct_encode, image_seed, iter_rate_encode, rate_encode, spike_probability


def test_shape_dtype_and_flattening():
    codes = torch.randint(0, 256, (3, 1, 4, 5), dtype=torch.uint8)
    spikes = rate_encode(codes, 7)
    assert spikes.shape == (7, 3, 20) and spikes.dtype == torch.bool and spikes.device.type == "cpu"


def test_deterministic_by_seed_and_seed_matters():
    codes = np.random.default_rng(0).integers(0, 256, (4, 50))
    a = rate_encode(codes, 20, seed=3)
    assert torch.equal(a, rate_encode(torch.as_tensor(codes), 20, seed=3))
    assert not torch.equal(a, rate_encode(codes, 20, seed=4))
    assert image_seed(0, 1) != image_seed(1, 0)


def test_chunking_and_prefix_invariance():
    codes = np.random.default_rng(1).integers(0, 256, (10, 30))
    whole = rate_encode(codes, 12, seed=9, max_rate=0.7)
    parts = torch.cat([rate_encode(codes[:4], 12, seed=9, max_rate=0.7),
                       rate_encode(codes[4:], 12, seed=9, max_rate=0.7, first_index=4)], dim=1)
    assert torch.equal(whole, parts)
    chunks = list(iter_rate_encode(codes, 12, 3, seed=9, max_rate=0.7))
    assert [(s, e) for s, e, _ in chunks] == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert torch.equal(whole, torch.cat([c for _, _, c in chunks], dim=1))
    assert torch.equal(whole[:5], rate_encode(codes, 5, seed=9, max_rate=0.7))  # first T' steps
    assert torch.equal(whole[:, 2:3], rate_encode(codes[2:3], 12, seed=9, max_rate=0.7, first_index=2))


def test_empirical_rate_matches_probability():
    codes = torch.tensor([[0, 51, 128, 204, 255]])
    for max_rate in (1.0, 0.4):
        spikes = rate_encode(codes.expand(40, 5), 250, max_rate=max_rate, seed=1)
        rate = spikes.double().mean(dim=(0, 1))
        p = spike_probability(codes, max_rate=max_rate)[0]
        assert torch.all((rate - p).abs() < 0.02), (rate, p)
        assert rate[0] == 0.0
    assert bool(rate_encode(torch.tensor([[255]]), 100).all())  # p = 1 spikes every step


def test_input_bits_scaling_and_clamp():
    p = spike_probability(torch.tensor([[0, 5, 15]]), input_bits=4, max_rate=0.5)
    assert p.tolist() == [[0.0, 0.5 * 5 / 15, 0.5]]


def test_device_argument():
    spikes = rate_encode(torch.tensor([[10, 200]]), 3, device="cpu")
    assert spikes.device.type == "cpu"
    if torch.cuda.is_available():
        assert torch.equal(rate_encode(torch.tensor([[10, 200]]), 3, device="cuda").cpu(), spikes)


@pytest.mark.parametrize("codes", [torch.tensor([[-1, 3]]), torch.tensor([[0, 256]]), torch.tensor([[0.5, 1.0]])])
def test_code_range_errors(codes):
    with pytest.raises(SnnCosimError):
        rate_encode(codes, 4)


@pytest.mark.parametrize("kwargs", [dict(max_rate=0.0), dict(max_rate=1.5), dict(max_rate=-0.1),
                                    dict(input_bits=0), dict(seed=1.5)])
def test_argument_errors(kwargs):
    with pytest.raises(SnnCosimError):
        rate_encode(torch.tensor([[1, 2]]), 4, **kwargs)


def test_steps_errors():
    for steps in (0, -1, 2.5):
        with pytest.raises(SnnCosimError):
            rate_encode(torch.tensor([[1]]), steps)
        with pytest.raises(SnnCosimError):
            direct_encode(torch.tensor([[1]]), steps)


def test_direct_encode():
    codes = torch.tensor([[[1, 2], [3, 4]], [[5, 6], [7, 255]]], dtype=torch.uint8)
    out = direct_encode(codes, 3)
    assert out.shape == (3, 2, 4) and out.dtype == torch.int64
    assert all(torch.equal(out[t], codes.reshape(2, 4).long()) for t in range(3))
    with pytest.raises(SnnCosimError):
        direct_encode(torch.tensor([[16]]), 2, input_bits=4)


# ------------------------------------------------------------------------------------------------------------------
# Literal tests of the encoders (issue 11). The encoders feed the golden model and the RTL alike, so no golden ↔ RTL
# comparison can catch a fault in them: every expectation below is written out by hand from docs/spec.md §3a, §3b
# and §5, never taken from the encoder itself.
from golden.simulation.encoding import fs_encode, fs_pixel_codes, pixel_codes_to_phases, weighted_encode  # noqa: E402


def _bits(spikes, image=0, neuron=0) -> list[int]:
    return [int(v) for v in spikes[:, image, neuron]]


def test_weighted_encoding_is_msb_first_from_phase_1_and_repeats_every_period():
    # K = 4: phase k = 1..4 sends bit K − k = 3, 2, 1, 0; 0b1011 → 1 0 1 1, 0b0110 → 0 1 1 0, twice over 8 steps
    codes = torch.tensor([[0b1011, 0b0110, 0b0000, 0b1111], [0b1000, 0b0001, 0b0101, 0b1010]])
    spikes = weighted_encode(codes, 8, 4)
    assert spikes.shape == (8, 2, 4) and spikes.dtype == torch.bool
    assert _bits(spikes, 0, 0) == [1, 0, 1, 1, 1, 0, 1, 1]
    assert _bits(spikes, 0, 1) == [0, 1, 1, 0, 0, 1, 1, 0]
    assert _bits(spikes, 0, 2) == [0] * 8
    assert _bits(spikes, 0, 3) == [1] * 8
    assert _bits(spikes, 1, 0) == [1, 0, 0, 0, 1, 0, 0, 0]
    assert _bits(spikes, 1, 1) == [0, 0, 0, 1, 0, 0, 0, 1]
    assert _bits(spikes, 1, 2) == [0, 1, 0, 1, 0, 1, 0, 1]
    assert _bits(spikes, 1, 3) == [1, 0, 1, 0, 1, 0, 1, 0]
    # Kim Eq. 11: over one period the spikes weighted 2^(K−k) sum to the code: 8 + 2 + 1 = 11
    assert sum(bit << (4 - k) for k, bit in enumerate(_bits(spikes)[:4], start=1)) == 11


def test_weighted_encoding_partial_period_k3_and_k1():
    # K = 3, 7 steps (two periods and the first phase of a third): 0b101 → 1 0 1 | 1 0 1 | 1
    assert _bits(weighted_encode(torch.tensor([[0b101, 0b011]]), 7, 3)) == [1, 0, 1, 1, 0, 1, 1]
    assert _bits(weighted_encode(torch.tensor([[0b101, 0b011]]), 7, 3), 0, 1) == [0, 1, 1, 0, 1, 1, 0]
    # K = 1: every step is phase 1 and sends bit 0
    assert _bits(weighted_encode(torch.tensor([[1, 0]]), 5, 1)) == [1, 1, 1, 1, 1]
    assert _bits(weighted_encode(torch.tensor([[1, 0]]), 5, 1), 0, 1) == [0, 0, 0, 0, 0]
    # codes [B, c, h, w] are flattened in C order: neuron 3 is (c=0, h=1, w=1)
    spikes = weighted_encode(torch.tensor([[[[0, 0], [0, 0b10]]]]), 4, 2)
    assert spikes.shape == (4, 1, 4) and _bits(spikes, 0, 3) == [1, 0, 1, 0]
    with pytest.raises(SnnCosimError):
        weighted_encode(torch.tensor([[16]]), 4, 4)  # 5 bits do not fit K = 4


def test_weighted_pixel_codes_keep_the_upper_k_bits():
    assert pixel_codes_to_phases(np.array([[0b10110111, 255, 15, 16]]), 4).tolist() == [[0b1011, 15, 0, 1]]
    assert pixel_codes_to_phases(np.array([[0b10110111]]), 1).tolist() == [[1]]


def test_fs_encoding_sends_bit_k_minus_t_at_step_t_then_stays_silent():
    # K = 4, L·K = 12 steps (L = 3): step t = 1..4 sends bit 4 − t (MSB first); windows 2 and 3 are silent
    codes = torch.tensor([[0b1011, 0b0110, 0b0001], [0b1111, 0b0000, 0b1000]])
    spikes = fs_encode(codes, 4, steps=12)
    assert spikes.shape == (12, 2, 3) and spikes.dtype == torch.bool
    assert _bits(spikes, 0, 0) == [1, 0, 1, 1] + [0] * 8
    assert _bits(spikes, 0, 1) == [0, 1, 1, 0] + [0] * 8
    assert _bits(spikes, 0, 2) == [0, 0, 0, 1] + [0] * 8
    assert _bits(spikes, 1, 0) == [1, 1, 1, 1] + [0] * 8
    assert _bits(spikes, 1, 1) == [0] * 12
    assert _bits(spikes, 1, 2) == [1, 0, 0, 0] + [0] * 8
    # the default length is one window of K steps; K = 1 sends the single bit at step 1
    assert fs_encode(codes, 4).shape == (4, 2, 3)
    assert _bits(fs_encode(torch.tensor([[1]]), 1, steps=3)) == [1, 0, 0]
    # layer 1 collects Σ_t 2^(K−t)·bit = the code
    assert sum(bit << (4 - t) for t, bit in enumerate(_bits(spikes)[:4], start=1)) == 11


def test_fs_pixel_codes_by_hand():
    pixel = np.array([[0b10110111]])  # 183
    assert fs_pixel_codes(pixel, 4).tolist() == [[0b1011]]  # upper 4 bits
    assert fs_pixel_codes(pixel, 8).tolist() == [[183]]
    assert fs_pixel_codes(pixel, 10).tolist() == [[183 * 4]]  # pixel << (K − 8)


def _binomial_ok(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    """``count`` successes in ``n`` Bernoulli(p) trials lie within ``sigmas`` standard deviations of n·p."""
    return abs(count - n * p) <= sigmas * (n * p * (1 - p)) ** 0.5 + 1e-9


def test_rate_encoding_mean_rate_is_max_rate_times_code_fraction():
    # p = max_rate · code / (2^bits − 1), written out by hand; T = 4000 steps × 2 images per code
    T, B = 4000, 2
    cases = [  # (input_bits, max_rate, codes, expected p)
        (8, 0.5, [51, 128, 200, 255], [0.1, 0.5 * 128 / 255, 0.5 * 200 / 255, 0.5]),
        (8, 1.0, [1, 51, 204], [1 / 255, 0.2, 0.8]),
        (4, 0.9, [5, 10, 15], [0.3, 0.6, 0.9]),
    ]
    for input_bits, max_rate, codes, expected in cases:
        spikes = rate_encode(torch.tensor([codes] * B), T, max_rate=max_rate, seed=17, input_bits=input_bits)
        counts = spikes.sum(dim=(0, 1)).tolist()
        for code, count, p in zip(codes, counts, expected):
            assert _binomial_ok(count, T * B, p), (input_bits, max_rate, code, count / (T * B), p)


def test_rate_encoding_zero_never_and_full_code_at_max_rate_1_always_spikes():
    spikes = rate_encode(torch.tensor([[0, 255, 0], [255, 0, 255]]), 3000, seed=5)
    assert not spikes[:, 0, 0].any() and not spikes[:, 0, 2].any() and not spikes[:, 1, 1].any()
    assert spikes[:, 0, 1].all() and spikes[:, 1, 0].all() and spikes[:, 1, 2].all()
    four_bit = rate_encode(torch.tensor([[0, 15]]), 3000, seed=5, input_bits=4)
    assert not four_bit[:, 0, 0].any() and four_bit[:, 0, 1].all()
    # max_rate < 1 never saturates: the full code spikes at the rate max_rate, not always
    assert _binomial_ok(int(rate_encode(torch.tensor([[255]]), 3000, max_rate=0.25, seed=5).sum()), 3000, 0.25)


def test_rate_encoding_seed_determinism_and_independent_images():
    codes = torch.tensor([[128, 128, 64]] * 4)  # four images with the same codes
    a = rate_encode(codes, 4000, seed=3)
    assert torch.equal(a, rate_encode(codes.clone(), 4000, seed=3))  # same seed, same spikes
    assert not torch.equal(a, rate_encode(codes, 4000, seed=4))
    # images with equal codes still get their own spikes: two images (and two inputs of one image) agree on
    # both spiking only at the rate p·p of independent trains (p = 128/255)
    p = 128 / 255
    for x, y in [(a[:, 0, 0], a[:, 1, 0]), (a[:, 2, 1], a[:, 3, 1]), (a[:, 0, 0], a[:, 0, 1])]:
        assert not torch.equal(x, y)
        assert _binomial_ok(int((x & y).sum()), 4000, p * p)
    # an image's spikes depend on (seed, first_index + its position) only: image 3 of a batch is the first image
    # of a batch that starts at first_index 3, whatever the other images' codes
    other = torch.tensor([[7, 9, 11]] * 3 + [[128, 128, 64]])
    assert torch.equal(a[:, 3], rate_encode(other, 4000, seed=3)[:, 3])
    assert torch.equal(a[:, 3], rate_encode(codes[3:], 4000, seed=3, first_index=3)[:, 0])
    assert not torch.equal(a[:, 3], rate_encode(codes[3:], 4000, seed=3, first_index=2)[:, 0])
    assert torch.equal(a[:, 2], rate_encode(codes[3:], 4000, seed=3, first_index=2)[:, 0])


def test_rate_encoding_documented_generator_construction():
    """docs/spec.md §5: u is float64 [T, n] from torch.rand on a CPU generator seeded with image_seed(seed,
    first_index + b), and input i spikes iff u < p. Rebuilt here from the document, for images 0 and 1 at
    first_index 5."""
    codes = torch.tensor([[0, 64, 255, 200], [30, 90, 150, 210]])
    spikes = rate_encode(codes, 50, max_rate=0.8, seed=11, first_index=5)
    for b in range(2):
        generator = torch.Generator(device="cpu").manual_seed(image_seed(11, 5 + b))
        u = torch.rand((50, 4), generator=generator, dtype=torch.float64)
        p = torch.tensor([min(1.0, 0.8 * int(c) / 255) for c in codes[b]], dtype=torch.float64)
        assert torch.equal(spikes[:, b], u < p)


def test_default_generator_is_mt19937_on_the_low_32_bits_of_the_image_seed():
    """The default spikes, rebuilt with numpy's MT19937 (init_genrand of the seed's low 32 bits, as torch seeds
    its CPU generator) and torch's float64 recipe: 53 low bits of (first draw << 32 | second draw) · 2^-53.
    Documents why no cheaper exact scheme exists: the draws are the Mersenne Twister's, in order."""
    codes = torch.tensor([[0, 64, 255, 200, 17], [30, 90, 150, 210, 1]])
    spikes = rate_encode(codes, 9, seed=2 ** 40 + 3, first_index=7)
    for b in range(2):
        state = np.random.RandomState(image_seed(2 ** 40 + 3, 7 + b) & 0xFFFFFFFF).get_state()[1]
        bits = np.random.MT19937(0)
        bits.state = {"bit_generator": "MT19937", "state": {"key": state, "pos": 624}}
        raw = bits.random_raw(2 * 9 * 5).astype(np.uint64)
        mantissa = ((raw[0::2] << np.uint64(32)) | raw[1::2]) & np.uint64(2 ** 53 - 1)
        u = mantissa.astype(np.float64).reshape(9, 5) * 2.0 ** -53
        np.testing.assert_array_equal(spikes[:, b].numpy(), u < codes[b].numpy() / 255)


def test_pcg64x16_option_documented_construction_and_properties():
    codes = torch.tensor([[0, 64, 255, 200, 17], [30, 90, 150, 210, 1], [255, 0, 128, 3, 250]])
    spikes = rate_encode(codes, 30, max_rate=0.8, seed=5, first_index=2, generator="pcg64x16")
    assert spikes.shape == (30, 3, 5) and spikes.dtype == torch.bool
    for b in range(3):  # rebuilt from the docstring
        raw = np.random.PCG64(image_seed(5, 2 + b)).random_raw(-(-30 * 5 // 4))
        draws = raw.astype("<u8").view("<u2")[:150].reshape(30, 5)
        thresholds = np.ceil(np.minimum(1.0, codes[b].numpy() * (0.8 / 255)) * 65536)
        np.testing.assert_array_equal(spikes[:, b].numpy(), draws < thresholds)
    # chunking and prefixes do not change the spikes; p = 0 never and p = 1 always spikes
    whole = rate_encode(codes, 30, seed=5, generator="pcg64x16")
    parts = [s for _, _, s in iter_rate_encode(codes, 30, 2, seed=5, generator="pcg64x16")]
    assert torch.equal(torch.cat(parts, dim=1), whole)
    assert torch.equal(rate_encode(codes, 11, seed=5, generator="pcg64x16"), whole[:11])
    assert not whole[:, 0, 0].any() and whole[:, 0, 2].all() and whole[:, 2, 0].all()
    assert not torch.equal(whole, rate_encode(codes, 30, seed=5))  # other spikes than the default
    many = rate_encode(torch.full((40, 50), 77), 50, seed=1, generator="pcg64x16")
    assert _binomial_ok(int(many.sum()), many.numel(), float(np.ceil(77 / 255 * 65536) / 65536))


def test_unknown_generator_is_refused():
    with pytest.raises(SnnCosimError, match="generator must be one of mt19937, pcg64x16"):
        rate_encode(torch.zeros((1, 3), dtype=torch.int64), 4, generator="philox")
