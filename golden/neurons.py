"""Neuron models (SPEC §3, docs/spec.md §3): one interface, a bit-accurate integer model and a float model.

Every neuron layer is a ``torch.nn.Module`` with explicit state: :meth:`Neuron.reset_state` creates the membrane
``v`` (``[batch, n]``) and :meth:`Neuron.forward` takes the synaptic input ``I`` of one step (``[batch, n]``,
bias not included) and returns the spikes (``bool [batch, n]``), updating ``v`` in place of the old state.

Integer model, per neuron and step, in int64 (``lo, hi`` = range of a ``membrane_bits`` two's-complement word):

    v_exact = v − (v >> leak_shift) + I + bias        # LIF (arithmetic shift of the previous v); IF: v + I + bias
    v       = clamp(v_exact, lo, hi)                  # saturation; the neuron's saturation flag = (v != v_exact)
    v       = max(v, floor)                           # only when a floor is set
    s       = v ≥ θ
    v       = 0 (reset "zero")  or  sat(v − θ) (reset "subtract")   where s

The float model runs the same equations in float64 with ``v · 2^-leak_shift`` for the leak and no saturation.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .errors import SnnCosimError
from .ir import NeuronParams, signed_range


class Neuron(nn.Module):
    """The common interface. Subclasses hold per-neuron ``threshold`` and ``bias`` buffers (``[n]``)."""

    v: torch.Tensor | None

    def __init__(self, params: NeuronParams, threshold: torch.Tensor, bias: torch.Tensor, dtype: torch.dtype):
        super().__init__()
        if params.kind not in ("if", "lif"):
            raise SnnCosimError(f"neuron kind {params.kind!r} is not one of 'if', 'lif'")
        if params.reset not in ("zero", "subtract"):
            raise SnnCosimError(f"reset {params.reset!r} is not one of 'zero', 'subtract'")
        threshold = torch.as_tensor(threshold).reshape(-1)
        bias = torch.as_tensor(bias).reshape(-1)
        if threshold.shape != bias.shape:
            raise SnnCosimError(f"threshold shape {tuple(threshold.shape)} != bias shape {tuple(bias.shape)}")
        self.params = params
        self.register_buffer("threshold", threshold.to(dtype), persistent=False)
        self.register_buffer("bias", bias.to(dtype), persistent=False)
        self.v = None

    @property
    def n(self) -> int:
        return int(self.threshold.shape[0])

    def reset_state(self, batch: int, n: int | None = None, device=None) -> None:
        """Membranes of ``batch`` images start at zero (also what the hardware does at ``start``)."""
        if n is not None and n != self.n:
            raise SnnCosimError(f"this neuron layer has {self.n} neurons, not {n}")
        device = self.threshold.device if device is None else torch.device(device)
        if device != self.threshold.device:
            self.to(device)
        self.v = torch.zeros((batch, self.n), dtype=self.threshold.dtype, device=device)
        self._reset_flags()

    def _reset_flags(self) -> None:
        pass

    def _check_input(self, current: torch.Tensor) -> None:
        if self.v is None:
            raise SnnCosimError("call reset_state(batch, n, device) before the first step")
        if current.shape != self.v.shape:
            raise SnnCosimError(f"synaptic input shape {tuple(current.shape)} != state shape {tuple(self.v.shape)}")


class IntegerNeuron(Neuron):
    """Bit-accurate IF/LIF layer of SPEC §3 with a ``membrane_bits`` saturating membrane.

    After each :meth:`forward`, ``saturated`` (``bool [batch, n]``) tells which neurons' membrane write saturated
    in that step (the ``saturations`` counter is its sum)."""

    def __init__(self, params: NeuronParams, threshold, bias, membrane_bits: int):
        super().__init__(params, torch.as_tensor(threshold), torch.as_tensor(bias), torch.int64)
        if not 4 <= membrane_bits <= 62:
            raise SnnCosimError(f"membrane_bits must be in 4..62, got {membrane_bits}")
        self.membrane_bits = int(membrane_bits)
        self.lo, self.hi = signed_range(self.membrane_bits)
        if params.kind == "lif" and not 1 <= params.leak_shift < membrane_bits:
            raise SnnCosimError(f"LIF leak_shift must be in 1..{membrane_bits - 1}, got {params.leak_shift}")
        if self.n and (int(self.threshold.min()) < 1 or int(self.threshold.max()) > self.hi):
            raise SnnCosimError(f"thresholds must lie in [1, {self.hi}] for membrane_bits={membrane_bits}")
        if params.floor is not None and not self.lo <= params.floor <= 0:
            raise SnnCosimError(f"membrane floor {params.floor} must lie in [{self.lo}, 0]")
        self.saturated: torch.Tensor | None = None

    def _reset_flags(self) -> None:
        self.saturated = torch.zeros_like(self.v, dtype=torch.bool)

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        """One step: ``current`` is the exact synaptic input ``Σ_i W[j,i]·x_i`` (int64, bias excluded)."""
        self._check_input(current)
        v = self.v
        p = self.params
        if current.dtype != torch.int64:
            current = current.to(torch.int64)
        v_exact = v + current + self.bias
        if p.kind == "lif":
            v_exact = v_exact - torch.bitwise_right_shift(v, p.leak_shift)  # arithmetic shift (floor)
        v_new = v_exact.clamp(self.lo, self.hi)
        saturated = v_new != v_exact
        if p.floor is not None:
            v_new = v_new.clamp_min(p.floor)
        spikes = v_new >= self.threshold
        if p.reset == "zero":
            v_new = torch.where(spikes, torch.zeros_like(v_new), v_new)
        else:
            after = v_new - self.threshold
            clamped = after.clamp(self.lo, self.hi)  # cannot saturate (v ≥ θ ≥ 1), kept for the contract
            saturated |= spikes & (clamped != after)
            v_new = torch.where(spikes, clamped, v_new)
        self.v = v_new
        self.saturated = saturated
        return spikes


class FloatNeuron(Neuron):
    """The same IF/LIF equations in float64 without saturation (accuracy studies; SPEC §1)."""

    def __init__(self, params: NeuronParams, threshold, bias):
        super().__init__(params, torch.as_tensor(threshold), torch.as_tensor(bias), torch.float64)
        self.leak = 0.0 if params.kind == "if" else math.ldexp(1.0, -int(params.leak_shift))

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        self._check_input(current)
        p = self.params
        v = self.v + current.to(torch.float64) + self.bias
        if p.kind == "lif":
            v = v - self.v * self.leak
        if p.floor is not None:
            v = v.clamp_min(float(p.floor))
        spikes = v >= self.threshold
        if p.reset == "zero":
            v = torch.where(spikes, torch.zeros_like(v), v)
        else:
            v = torch.where(spikes, v - self.threshold, v)
        self.v = v
        return spikes
