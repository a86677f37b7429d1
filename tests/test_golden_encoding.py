"""Input encoders: determinism, chunk invariance, rates, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from golden.encoding import direct_encode, image_seed, iter_rate_encode, rate_encode, spike_probability
from golden.errors import SnnCosimError


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
