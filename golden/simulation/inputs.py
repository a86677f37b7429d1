"""The input spikes of a network for 8-bit data codes, from what the network itself records: its input coding
(rate, weighted, FS, direct), K and the rate encoder's ``max_rate`` (``metadata["conversion"]["max_rate"]``). The
one encoder of a saved network: ``snncosim cosim``, the conversion pipeline and the top-level API all use it."""

from __future__ import annotations

import torch

from golden.conversion.convert import weighted_codes
from golden.core.errors import SnnCosimError
from golden.core.network import IntegerNetwork
from golden.simulation.encoding import fs_encode, fs_pixel_codes, rate_encode, weighted_encode

__all__ = ["recorded_max_rate", "default_steps", "encode_inputs"]

DEFAULT_STEPS = {"rate": 64, "direct": 64, "weighted": 32}  # FS: exactly L·K


def recorded_max_rate(network: IntegerNetwork) -> float:
    """The ``max_rate`` the network was converted for (its biases are scaled by it), 1.0 when not recorded."""
    conversion = network.metadata.get("conversion") if isinstance(network.metadata, dict) else None
    value = conversion.get("max_rate") if isinstance(conversion, dict) else None
    return float(value) if isinstance(value, (int, float)) else 1.0


def default_steps(network: IntegerNetwork) -> int:
    """Steps per image when none are given: L·K for FS networks, else the coding's default."""
    if network.is_fs:
        return int(network.fs_latency)
    return DEFAULT_STEPS[network.input_coding]


def encode_inputs(network: IntegerNetwork, codes, steps: int | None = None, *, seed: int = 0,
                  first_index: int = 0, max_rate: float | None = None) -> torch.Tensor:
    """Input spikes ``bool [T, B, n_0]`` (time-major) of 8-bit codes ``[B, ...]`` for ``network``: seeded
    Bernoulli rate coding (image ``first_index + b`` draws the same spikes in any batch), Kim's weighted spikes of
    the codes' upper K bits, the FS code (T = L·K), or for direct input the codes themselves every step (int64)."""
    codes = torch.as_tensor(codes)
    if codes.dtype != torch.uint8:
        raise SnnCosimError(f"input codes must be uint8 (8-bit codes of a data set), got {codes.dtype}")
    flat = codes.reshape(codes.shape[0], -1)
    if flat.shape[1] != network.n_inputs:
        raise SnnCosimError(f"inputs of {flat.shape[1]} values do not fit the network's {network.n_inputs} inputs")
    coding = network.input_coding
    if network.is_fs:
        latency = int(network.fs_latency)
        if steps is not None and steps != latency:
            raise SnnCosimError(f"an FS network takes exactly L·K = {latency} steps per image, not {steps}")
        return fs_encode(fs_pixel_codes(flat, int(network.phases)), int(network.phases), steps=latency)
    steps = default_steps(network) if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 65535:
        raise SnnCosimError(f"steps must be an integer in 1..65535, got {steps!r}")
    if coding == "weighted":
        return weighted_encode(weighted_codes(flat, int(network.phases)), steps, int(network.phases))
    if coding == "direct":
        return flat.to(torch.int64).unsqueeze(0).expand(steps, -1, -1).clone()
    rate = recorded_max_rate(network) if max_rate is None else max_rate
    return rate_encode(flat, steps, max_rate=rate, seed=seed, first_index=first_index)
