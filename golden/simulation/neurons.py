"""Neuron models (SPEC §3, docs/spec.md §3): one interface, a bit-accurate integer model and a float model.

Every neuron layer is a ``torch.nn.Module`` with explicit state: :meth:`Neuron.reset_state` creates the membrane
``v`` (``[batch, n]``) and :meth:`Neuron.forward` takes the synaptic input ``I`` of one step (``[batch, n]``,
bias not included) and returns the spikes (``bool [batch, n]``), updating ``v`` in place of the old state.

Integer model, per neuron and step, in int64 (``lo, hi`` = range of a ``membrane_bits`` two's-complement word):

    v_exact = v − (v >> leak_shift) + I + bias        # LIF (arithmetic shift of the previous v); IF: v + I + bias
    v       = clamp(v_exact, lo, hi)                  # saturation; the neuron's saturation flag = (v != v_exact)
    v       = max(v, floor)                           # only when a floor is set (floor_threshold: max(v, −θ))
    s       = v ≥ θ
    v       = 0 (reset "zero")  or  sat(v − θ) (reset "subtract")   where s
    # lateral inhibition (optional WTA strengths u; docs/spec.md §3c), with n = Σ_j s_j of the layer:
    v       = max(sat(v − u·(n − s)), floor)          where n − s > 0

The float model runs the same equations in float64 with ``v · 2^-leak_shift`` for the leak and no saturation.

Weighted spikes (Kim 2018; docs/architecture.md "Weighted spikes"; docs/spec.md §3a). ``K`` phases, the global
1-based step ``t`` (passed to :meth:`Neuron.forward` as ``step``) has phase ``k = 1 + (t−1) mod K`` and shift
``sh = K − k``; the integer membrane is kept in units of 2^-K:

    ws:   v = sat(v + ((I + bias) << sh));  θ_k = θ << sh;  s = v ≥ θ_k;  v = sat(v − θ_k) where s
    acc:  t > S·K:  v = sat(v + ((I + bias) << sh));   t ≤ S·K: v unchanged;   never spikes

The float model of the same kinds is Kim's Eq. 8–10 in float64 with ω = 2^-k and the bias field holding Kim's β
(``z = ω·(I + β)``, ``s = V + z ≥ ω·θ``, ``V = V + z − ω·θ·s``; ``acc``: ``V += z`` for t > S·K), so a float
run of an integer network without saturation has ``V = v · 2^-K`` exactly.

FS neurons (Stöckl & Maass 2021; docs/spec.md §3b) have their own classes (:class:`FsNeuron`,
:class:`IntegerFsNeuron`, :class:`FloatFsNeuron`): the simulator's window schedule calls ``collect`` (``v =
sat((bias at the window's first step, else v) + d_src[t]·I)``) or ``fire`` (``z = v ≥ T[t]``, ``v = sat(v −
h[t]·z)``) per step; the FS network's 'acc' output layer only collects.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from torch import nn

from golden.core.errors import SnnCosimError
from golden.core.network import NeuronParams, signed_range
from golden.simulation import fastops


def _zero_membranes(layer: nn.Module, batch: int, n: int | None, device) -> torch.Tensor:
    """Zero membranes ``[batch, layer.n]`` on ``device`` (the layer's buffers are moved there first)."""
    if n is not None and n != layer.n:
        raise SnnCosimError(f"this neuron layer has {layer.n} neurons, not {n}")
    device = layer.threshold.device if device is None else torch.device(device)
    if device != layer.threshold.device:
        layer.to(device)
    return torch.zeros((batch, layer.n), dtype=layer.threshold.dtype, device=device)


class Neuron(nn.Module):
    """The common interface. Subclasses hold per-neuron ``threshold`` and ``bias`` buffers (``[n]``)."""

    v: torch.Tensor | None

    def __init__(self, params: NeuronParams, threshold: torch.Tensor, bias: torch.Tensor, dtype: torch.dtype,
                 phases: int = 0, skip_periods: int = 0):
        super().__init__()
        if params.kind not in ("if", "lif", "ws", "acc"):
            raise SnnCosimError(f"neuron kind {params.kind!r} is not one of 'if', 'lif', 'ws', 'acc'")
        if params.reset not in ("zero", "subtract"):
            raise SnnCosimError(f"reset {params.reset!r} is not one of 'zero', 'subtract'")
        if params.kind == "ws" and params.reset != "subtract":
            raise SnnCosimError("a weighted-spike ('ws') neuron resets by subtraction (Kim 2018 Eq. 10)")
        if params.kind in ("ws", "acc"):
            if isinstance(phases, bool) or not isinstance(phases, numbers.Integral) or not 1 <= phases <= 16:
                raise SnnCosimError(f"{params.kind!r} neurons need phases K in 1..16, got {phases!r}")
            if isinstance(skip_periods, bool) or not isinstance(skip_periods, numbers.Integral) or skip_periods < 0:
                raise SnnCosimError(f"skip_periods must be a non-negative integer, got {skip_periods!r}")
            if params.leak_shift or params.floor is not None or params.floor_threshold:
                raise SnnCosimError(f"{params.kind!r} neurons have no leak and no floor")
        if params.floor_threshold and params.floor is not None:
            raise SnnCosimError("floor and floor_threshold exclude each other")
        self.phases = int(phases) if params.kind in ("ws", "acc") else 0
        self.skip_steps = int(skip_periods) * self.phases  # acc integrates only for t > S·K
        threshold = torch.as_tensor(threshold).reshape(-1)
        bias = torch.as_tensor(bias).reshape(-1)
        if threshold.shape != bias.shape:
            raise SnnCosimError(f"threshold shape {tuple(threshold.shape)} != bias shape {tuple(bias.shape)}")
        self.params = params
        self.register_buffer("threshold", threshold.to(dtype), persistent=False)
        self.register_buffer("bias", bias.to(dtype), persistent=False)
        self.register_buffer("inhibition", None, persistent=False)  # WTA strengths u [n] or None (§3c)
        self.v = None

    def _set_inhibition(self, inhibition, dtype: torch.dtype) -> None:
        """Per-neuron WTA strengths u (``[n]``) or None (docs/spec.md §3c); IF/LIF only."""
        if inhibition is None:
            return
        if self.params.kind not in ("if", "lif"):
            raise SnnCosimError(f"lateral inhibition needs IF/LIF neurons, not {self.params.kind!r}")
        inhibition = torch.as_tensor(inhibition).reshape(-1)
        if inhibition.shape != self.threshold.shape:
            raise SnnCosimError(f"inhibition shape {tuple(inhibition.shape)} != threshold shape "
                                f"{tuple(self.threshold.shape)}")
        self.register_buffer("inhibition", inhibition.to(dtype), persistent=False)

    def _floor(self, v: torch.Tensor) -> torch.Tensor:
        """Step 3: ``max(v, floor)``, or ``max(v, −θ_j)`` with floor_threshold; identity without a floor."""
        if self.params.floor is not None:
            return v.clamp_min(self.params.floor)
        if self.params.floor_threshold:
            return torch.maximum(v, -self.threshold)
        return v

    @property
    def n(self) -> int:
        return int(self.threshold.shape[0])

    def reset_state(self, batch: int, n: int | None = None, device=None) -> None:
        """Membranes of ``batch`` images start at zero (also what the hardware does at ``start``)."""
        self.v = _zero_membranes(self, batch, n, device)
        self._reset_flags()

    def _reset_flags(self) -> None:
        pass

    @property
    def weighted(self) -> bool:
        """True for the weighted-spike kinds ('ws', 'acc') whose update depends on the phase."""
        return self.phases > 0

    @property
    def spiking(self) -> bool:
        """False for the non-spiking output accumulator ('acc')."""
        return self.params.kind != "acc"

    def _check_input(self, current: torch.Tensor) -> None:
        if self.v is None:
            raise SnnCosimError("call reset_state(batch, n, device) before the first step")
        if current.shape != self.v.shape:
            raise SnnCosimError(f"synaptic input shape {tuple(current.shape)} != state shape {tuple(self.v.shape)}")

    def _phase_shift(self, step) -> int:
        """``sh = K − k`` of the 1-based global step (weighted kinds only)."""
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 1:
            raise SnnCosimError(f"{self.params.kind!r} neurons need the 1-based global step, got step={step!r}")
        return self.phases - 1 - (int(step) - 1) % self.phases

    def _gated(self, step: int) -> bool:
        """True when an 'acc' neuron ignores its input (t ≤ S·K)."""
        return self.params.kind == "acc" and step <= self.skip_steps

    def run_steps(self, currents: torch.Tensor, first_step: int, spikes: torch.Tensor,
                  membranes: torch.Tensor | None = None, saturations: torch.Tensor | None = None) -> None:
        """Consecutive steps ``first_step, first_step + 1, …`` (1-based global) of ``currents [S, batch, n]`` (one
        synaptic input per step): writes ``spikes[s]`` (``bool [S, batch, n]``), ``membranes[s]`` (the membrane at
        the end of the step) and ``saturations[s]`` (``int64 [S, batch]``, saturated writes per image) when given.
        The same as calling :meth:`forward` step by step (what this default does)."""
        for s in range(currents.shape[0]):
            spikes[s] = self(currents[s], first_step + s)
            if membranes is not None:
                membranes[s] = self.v
            flags = getattr(self, "saturated", None)
            if saturations is not None and flags is not None:
                saturations[s] = fastops.count_true(flags)


class IntegerNeuron(Neuron):
    """Bit-accurate IF/LIF/WS/acc layer of SPEC §3 with a ``membrane_bits`` saturating membrane.

    ``phases`` (K) and ``skip_periods`` (S) are used by the weighted kinds only, whose :meth:`forward` needs the
    1-based global ``step``. After each :meth:`forward`, ``saturated`` (``bool [batch, n]``) tells which neurons'
    membrane write saturated in that step (the ``saturations`` counter is its sum)."""

    def __init__(self, params: NeuronParams, threshold, bias, membrane_bits: int, *, phases: int = 0,
                 skip_periods: int = 0, inhibition=None):
        super().__init__(params, torch.as_tensor(threshold), torch.as_tensor(bias), torch.int64, phases, skip_periods)
        self._set_inhibition(inhibition, torch.int64)
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
        if self.inhibition is not None and self.n and (int(self.inhibition.min()) < 0
                                                       or int(self.inhibition.max()) > self.hi):
            raise SnnCosimError(f"inhibition strengths must lie in [0, {self.hi}] for membrane_bits={membrane_bits}")
        if self.weighted and self.n:
            top = int(self.threshold.max()) if params.kind == "ws" else 0
            if top << (self.phases - 1) > self.hi or int(self.bias.abs().max()) << (self.phases - 1) > self.hi:
                raise SnnCosimError(
                    f"with K = {self.phases} phases the phase-1 threshold/bias (<< {self.phases - 1}) does not fit "
                    f"membrane_bits={membrane_bits}")
        self.saturated: torch.Tensor | None = None
        # (lowest, highest) synaptic input Σ W·x a neuron can get in one step (binary inputs), when the simulator
        # knows it: lets the CPU fast path skip the saturation test in steps that provably cannot saturate
        self.input_bounds: tuple[int, int] | None = None

    def _reset_flags(self) -> None:
        self.saturated = torch.zeros_like(self.v, dtype=torch.bool)

    def forward(self, current: torch.Tensor, step: int | None = None) -> torch.Tensor:
        """One step: ``current`` is the exact synaptic input ``Σ_i W[j,i]·x_i`` (int64, bias excluded); ``step``
        is the 1-based global step (needed by 'ws' and 'acc', ignored by IF/LIF)."""
        self._check_input(current)
        if current.dtype != torch.int64:
            current = current.to(torch.int64)
        if self.weighted:
            return self._forward_weighted(current, step)
        v = self.v
        p = self.params
        v_exact = v + current + self.bias
        if p.kind == "lif":
            v_exact = v_exact - torch.bitwise_right_shift(v, p.leak_shift)  # arithmetic shift (floor)
        v_new = v_exact.clamp(self.lo, self.hi)
        saturated = v_new != v_exact
        v_new = self._floor(v_new)
        spikes = v_new >= self.threshold
        if p.reset == "zero":
            v_new = torch.where(spikes, torch.zeros_like(v_new), v_new)
        else:
            after = v_new - self.threshold
            clamped = after.clamp(self.lo, self.hi)  # cannot saturate (v ≥ θ ≥ 1), kept for the contract
            saturated |= spikes & (clamped != after)
            v_new = torch.where(spikes, clamped, v_new)
        if self.inhibition is not None:
            v_new = self._inhibit(v_new, spikes, saturated)
        self.v = v_new
        self.saturated = saturated
        return spikes

    def run_steps(self, currents: torch.Tensor, first_step: int, spikes: torch.Tensor,
                  membranes: torch.Tensor | None = None, saturations: torch.Tensor | None = None) -> None:
        """:meth:`Neuron.run_steps`; IF/LIF layers without lateral inhibition take a fast path with the same results
        (bias added once for all steps, in-place updates, a scalar threshold when all are equal, and on the CPU a
        min/max test so that saturation flags are only formed in steps that saturate)."""
        if self.weighted or self.inhibition is not None or currents.shape[0] == 0:
            return super().run_steps(currents, first_step, spikes, membranes, saturations)
        self._check_input(currents[0])
        dtype = self._state_dtype(currents)
        if currents.device.type == "cpu" and fastops.NUMPY_ON_CPU:
            return self._numpy_steps(currents, dtype, spikes, membranes, saturations)
        return self._torch_steps(currents, dtype, spikes, membranes, saturations)

    def _numpy_steps(self, currents: torch.Tensor, dtype: torch.dtype, spikes: torch.Tensor,
                     membranes: torch.Tensor | None, saturations: torch.Tensor | None) -> None:
        """The CPU fast path in numpy on views of the same memory (measured 1.5–7× faster per element-wise op
        than torch's CPU kernels at these sizes, conversions included); the same integers as :meth:`forward`."""
        p = self.params
        np_dtype = np.int32 if dtype == torch.int32 else np.int64
        drive = currents.numpy().astype(np_dtype)  # I + bias of every step (a new array)
        if bool(self.bias.any()):
            drive += self.bias.numpy().astype(np_dtype)
        theta = self._uniform_threshold()
        theta = theta if isinstance(theta, int) else theta.numpy().astype(np_dtype)
        lo, hi = self.lo, self.hi
        v = self.v.numpy().astype(np_dtype)
        leak = np.empty_like(v) if p.kind == "lif" else None
        silent = np.empty(v.shape, dtype=bool) if p.reset == "zero" else None
        fired_theta = np.empty_like(v) if p.reset != "zero" else None  # θ where a neuron fired, else 0
        floor = -theta if p.floor_threshold else p.floor
        out = spikes.numpy()
        mem = membranes.numpy() if membranes is not None else None
        sat = saturations.numpy() if saturations is not None else None
        # a running range [v_lo, v_hi] of the membranes: a step whose range stays inside [lo, hi] cannot saturate,
        # so it skips the min/max test (bounds: the input range + bias; LIF's v − (v >> k) is monotone; floors
        # raise, resets (θ ≥ 1) lower towards 0). Without known input bounds every step is tested.
        bounded = self.input_bounds is not None and v.size > 0
        if bounded:
            d_lo = self.input_bounds[0] + int(self.bias.min())
            d_hi = self.input_bounds[1] + int(self.bias.max())
            v_lo, v_hi = int(v.min()), int(v.max())
            floor_lo = None if floor is None else int(np.min(floor))
            floor_hi = None if floor is None else int(np.max(floor))
        flags = None
        for s in range(drive.shape[0]):
            if leak is not None:
                np.right_shift(v, p.leak_shift, out=leak)  # arithmetic shift of the previous v (floor)
                np.add(v, drive[s], out=v)
                np.subtract(v, leak, out=v)
            else:
                np.add(v, drive[s], out=v)
            flags = None
            test = True
            if bounded:
                if leak is not None:
                    v_lo, v_hi = v_lo - (v_lo >> p.leak_shift), v_hi - (v_hi >> p.leak_shift)
                v_lo, v_hi = v_lo + d_lo, v_hi + d_hi
                test = v_lo < lo or v_hi > hi
            if test:
                low, high = int(v.min()), int(v.max())
                if low < lo or high > hi:
                    flags = (v < lo) | (v > hi)
                    np.clip(v, lo, hi, out=v)
                v_lo, v_hi = max(low, lo), min(high, hi)
            if sat is not None:
                sat[s] = 0 if flags is None else flags.view(np.uint8).sum(axis=-1, dtype=np.int64)
            if floor is not None:
                np.maximum(v, floor, out=v)
                if bounded:
                    v_lo, v_hi = max(v_lo, floor_lo), max(v_hi, floor_hi)
            if bounded:  # a fired neuron goes to 0 or v − θ ∈ [0, v)
                v_lo, v_hi = min(v_lo, 0), max(v_hi, 0)
            fired = np.greater_equal(v, theta, out=out[s])
            if silent is not None:
                np.logical_not(fired, out=silent)
                np.multiply(v, silent, out=v)
            else:  # v − θ ≥ 0 where it fires: never saturates. Not subtract(where=fired): numpy's masked loop
                # was 3x slower than these three whole-array passes (measured)
                np.copyto(fired_theta, fired)
                np.multiply(fired_theta, theta, out=fired_theta)
                np.subtract(v, fired_theta, out=v)
            if mem is not None:
                mem[s] = v
        self.v = torch.from_numpy(v.astype(np.int64))
        self.saturated = torch.from_numpy(flags) if flags is not None else torch.zeros_like(self.v, dtype=torch.bool)

    def _torch_steps(self, currents: torch.Tensor, dtype: torch.dtype, spikes: torch.Tensor,
                     membranes: torch.Tensor | None, saturations: torch.Tensor | None) -> None:
        """The fast path in torch (GPUs; CPU when ``fastops.NUMPY_ON_CPU`` is off)."""
        p = self.params
        drive = currents.to(dtype)  # I + bias of every step (a new tensor)
        if bool(self.bias.any()):
            drive += self.bias.to(dtype)
        theta = self._uniform_threshold()
        if not isinstance(theta, int):
            theta = theta.to(dtype)
        lo, hi = self.lo, self.hi
        test_first = self.v.device.type == "cpu"  # a sync per step is cheap on the CPU, not on a GPU
        v = self.v.to(dtype, copy=True)
        flags = None
        for s in range(drive.shape[0]):
            if p.kind == "lif":
                leak = torch.bitwise_right_shift(v, p.leak_shift)  # arithmetic shift of the previous v (floor)
                v += drive[s]
                v -= leak
            else:
                v += drive[s]
            flags = None
            if test_first:
                low, high = torch.aminmax(v)
                if int(low) < lo or int(high) > hi:
                    flags = (v < lo) | (v > hi)
            else:
                flags = (v < lo) | (v > hi)
            if flags is not None:
                v.clamp_(lo, hi)
                if saturations is not None:
                    saturations[s] = fastops.count_true(flags)
            elif saturations is not None:
                saturations[s] = 0
            if p.floor is not None:
                v.clamp_min_(p.floor)
            elif p.floor_threshold:
                torch.maximum(v, -self.threshold.to(dtype), out=v)
            fired = torch.ge(v, theta, out=spikes[s])
            if p.reset == "zero":
                v.masked_fill_(fired, 0)
            elif isinstance(theta, int):
                v.add_(fired, alpha=-theta)  # v − θ ≥ 0 where it fires: never saturates
            else:
                v -= fired * theta
            if membranes is not None:
                membranes[s] = v
        self.v = v.to(torch.int64)
        self.saturated = flags if flags is not None else torch.zeros_like(v, dtype=torch.bool)

    def _state_dtype(self, currents: torch.Tensor) -> torch.dtype:
        """int32 (2–7× faster element-wise on the CPU) when no value of the update can leave it: |I + bias| plus
        twice the membrane range (v and its leak) below 2^31; int64 otherwise. Both give the same integers."""
        if currents.numel() == 0:
            return torch.int64
        if self.input_bounds is not None:  # known without a pass over the currents
            low, high = self.input_bounds
        else:
            low, high = torch.aminmax(currents)
        reach = max(abs(float(low)), abs(float(high))) + float(self.bias.abs().max()) + 2.0 ** self.membrane_bits
        return torch.int32 if reach < 2.0 ** 31 - 2 ** 20 else torch.int64

    def _uniform_threshold(self) -> int | torch.Tensor:
        """The threshold as a Python int when every neuron has the same one (cheaper to compare), else the tensor."""
        if self.n and bool((self.threshold == self.threshold[0]).all()):
            return int(self.threshold[0])
        return self.threshold

    def _inhibit(self, v: torch.Tensor, spikes: torch.Tensor, saturated: torch.Tensor) -> torch.Tensor:
        """Lateral inhibition after the reset (docs/spec.md §3c): ``m = n − s`` with n the layer's spikes of this
        step; where m > 0, ``v = max(sat(v − u·m), floor)``. Only the lower bound can clip (u, m ≥ 0); it is
        detected as ``m > (v − lo) // u`` so that ``u·m`` never has to be formed where it could leave int64.
        Updates ``saturated`` in place (a neuron counts at most once per step)."""
        m = spikes.sum(dim=-1, keepdim=True, dtype=torch.int64) - spikes.to(torch.int64)
        inhibited = m > 0
        u = self.inhibition
        clip = inhibited & (u > 0) & (m > torch.div(v - self.lo, u.clamp_min(1), rounding_mode="floor"))
        lowered = torch.where(clip, torch.full_like(v, self.lo), v - u * m)
        saturated |= clip
        return torch.where(inhibited, self._floor(lowered), v)

    def _forward_weighted(self, current: torch.Tensor, step) -> torch.Tensor:
        shift = self._phase_shift(step)
        no_spikes = torch.zeros_like(self.v, dtype=torch.bool)
        if self._gated(step):  # acc, t ≤ S·K: the membrane keeps its value, nothing is written
            self.saturated = no_spikes
            return no_spikes
        scale = 1 << shift  # << sh as an exact int64 multiply (also for negative values)
        v_exact = self.v + (current + self.bias) * scale
        v_new = v_exact.clamp(self.lo, self.hi)
        saturated = v_new != v_exact
        if self.params.kind == "acc":
            self.v, self.saturated = v_new, saturated
            return no_spikes
        theta_k = self.threshold * scale
        spikes = v_new >= theta_k
        after = v_new - theta_k
        clamped = after.clamp(self.lo, self.hi)  # cannot saturate (v ≥ θ_k ≥ 1), kept for the contract
        saturated |= spikes & (clamped != after)
        self.v = torch.where(spikes, clamped, v_new)
        self.saturated = saturated
        return spikes


class FloatNeuron(Neuron):
    """The same equations in float64 without saturation (accuracy studies; SPEC §1). Weighted kinds follow Kim
    2018 Eq. 8–10 (``ω = 2^-k``; the bias buffer holds Kim's β)."""

    def __init__(self, params: NeuronParams, threshold, bias, *, phases: int = 0, skip_periods: int = 0,
                 inhibition=None):
        super().__init__(params, torch.as_tensor(threshold), torch.as_tensor(bias), torch.float64, phases,
                         skip_periods)
        self._set_inhibition(inhibition, torch.float64)
        self.leak = 0.0 if params.kind != "lif" else math.ldexp(1.0, -int(params.leak_shift))

    def forward(self, current: torch.Tensor, step: int | None = None) -> torch.Tensor:
        self._check_input(current)
        if self.weighted:
            return self._forward_weighted(current.to(torch.float64), step)
        p = self.params
        v = self.v + current.to(torch.float64) + self.bias
        if p.kind == "lif":
            v = v - self.v * self.leak
        v = self._floor(v)
        spikes = v >= self.threshold
        if p.reset == "zero":
            v = torch.where(spikes, torch.zeros_like(v), v)
        else:
            v = torch.where(spikes, v - self.threshold, v)
        if self.inhibition is not None:  # docs/spec.md §3c without saturation
            m = spikes.sum(dim=-1, keepdim=True, dtype=torch.int64) - spikes.to(torch.int64)
            v = torch.where(m > 0, self._floor(v - self.inhibition * m.to(v.dtype)), v)
        self.v = v
        return spikes

    def _forward_weighted(self, current: torch.Tensor, step) -> torch.Tensor:
        shift = self._phase_shift(step)
        no_spikes = torch.zeros_like(self.v, dtype=torch.bool)
        if self._gated(step):
            return no_spikes
        omega = math.ldexp(1.0, shift - self.phases)  # ω(t) = 2^-k
        v = self.v + omega * (current + self.bias)  # Eq. 8: z = ω·(Σ W s + β)
        if self.params.kind == "acc":  # Eq. 16: output neurons integrate and never spike
            self.v = v
            return no_spikes
        theta_k = omega * self.threshold
        spikes = v >= theta_k  # Eq. 9
        self.v = torch.where(spikes, v - theta_k, v)  # Eq. 10
        return spikes


# ----------------------------------------------------------------------------------------------- FS neurons
class FsNeuron(nn.Module):
    """A layer of FS neurons (Stöckl & Maass 2021; docs/spec.md §3b), or the 'acc' output layer of an FS network.

    Unlike IF/LIF/WS neurons, an FS layer does one of two things per step, chosen by the simulator's window
    schedule: :meth:`collect` (``v = sat(base + scale·I)`` with ``base`` = the bias at the window's first step,
    else v; ``scale`` = the source layer's spike weight d_src[t]) or :meth:`fire` (``z = v ≥ T[t]``,
    ``v = sat(v − h[t]·z)``). 'acc' layers only collect. ``threshold`` holds the layer's per-neuron θ of the IR,
    which the dynamics do not use."""

    v: torch.Tensor | None

    def __init__(self, params: NeuronParams, threshold, bias, dtype: torch.dtype):
        super().__init__()
        if params.kind not in ("fs", "acc"):
            raise SnnCosimError(f"an FS network has 'fs' and 'acc' layers, not {params.kind!r}")
        if params.leak_shift or params.floor is not None:
            raise SnnCosimError(f"{params.kind!r} neurons have no leak and no floor")
        threshold = torch.as_tensor(threshold).reshape(-1)
        bias = torch.as_tensor(bias).reshape(-1)
        if threshold.shape != bias.shape:
            raise SnnCosimError(f"threshold shape {tuple(threshold.shape)} != bias shape {tuple(bias.shape)}")
        if params.kind == "fs":
            lengths = {len(params.fs_threshold), len(params.fs_reset), len(params.fs_weight)}
            if len(lengths) != 1 or 0 in lengths:
                raise SnnCosimError("an FS neuron needs fs_threshold, fs_reset and fs_weight of one length K >= 1")
        self.params = params
        self.register_buffer("threshold", threshold.to(dtype), persistent=False)
        self.register_buffer("bias", bias.to(dtype), persistent=False)
        table = lambda values: torch.as_tensor(list(values), dtype=dtype)  # noqa: E731
        self.register_buffer("table_threshold", table(params.fs_threshold), persistent=False)
        self.register_buffer("table_reset", table(params.fs_reset), persistent=False)
        self.v = None
        self.saturated: torch.Tensor | None = None

    @property
    def n(self) -> int:
        return int(self.threshold.shape[0])

    @property
    def spiking(self) -> bool:
        return self.params.kind == "fs"

    @property
    def phases(self) -> int:
        return len(self.params.fs_threshold)

    def reset_state(self, batch: int, n: int | None = None, device=None) -> None:
        self.v = _zero_membranes(self, batch, n, device)
        self.saturated = torch.zeros_like(self.v, dtype=torch.bool)

    def _check(self, current: torch.Tensor | None = None) -> None:
        if self.v is None:
            raise SnnCosimError("call reset_state(batch, n, device) before the first step")
        if current is not None and current.shape != self.v.shape:
            raise SnnCosimError(f"synaptic input shape {tuple(current.shape)} != state shape {tuple(self.v.shape)}")

    def _write(self, exact: torch.Tensor) -> torch.Tensor:
        self.saturated = torch.zeros_like(exact, dtype=torch.bool)
        return exact

    def collect(self, current: torch.Tensor, scale, first: bool) -> torch.Tensor:
        """One COLLECT step: ``v = sat((bias if first else v) + scale·current)``; ``current`` = ``Σ_i W[j,i]·z_i``
        of this step (exact). Returns no spikes (all False)."""
        self._check(current)
        base = self.bias.expand_as(self.v) if first else self.v
        self.v = self._write(base + current.to(self.v.dtype) * scale)
        return torch.zeros_like(self.v, dtype=torch.bool)

    def fire(self, phase: int) -> torch.Tensor:
        """One FIRE step at the 1-based phase t: ``z = v ≥ T[t]``, ``v = sat(v − h[t]·z)``; returns z."""
        self._check()
        if self.params.kind != "fs":
            raise SnnCosimError("the 'acc' output layer never fires")
        if isinstance(phase, bool) or not isinstance(phase, numbers.Integral) or not 1 <= phase <= self.phases:
            raise SnnCosimError(f"FS phase must be in 1..{self.phases}, got {phase!r}")
        spikes = self.v >= self.table_threshold[phase - 1]
        self.v = self._write(self.v - self.table_reset[phase - 1] * spikes.to(self.v.dtype))
        return spikes


class IntegerFsNeuron(FsNeuron):
    """Bit-accurate FS/acc layer: int64 membrane saturating at ``membrane_bits``; ``saturated`` flags the
    neurons whose write clipped in the last step."""

    def __init__(self, params: NeuronParams, threshold, bias, membrane_bits: int):
        if not 4 <= membrane_bits <= 62:
            raise SnnCosimError(f"membrane_bits must be in 4..62, got {membrane_bits}")
        for name in ("fs_threshold", "fs_reset", "fs_weight"):
            values = getattr(params, name)
            if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
                raise SnnCosimError(f"{name} of an integer FS neuron must hold integers")
        super().__init__(params, torch.as_tensor(threshold), torch.as_tensor(bias), torch.int64)
        self.membrane_bits = int(membrane_bits)
        self.lo, self.hi = signed_range(self.membrane_bits)
        tables = list(params.fs_threshold) + list(params.fs_reset) + list(params.fs_weight)
        if tables and (min(tables) < self.lo or max(tables) > self.hi):
            raise SnnCosimError(f"FS table entries must fit membrane_bits={membrane_bits}")

    def _write(self, exact: torch.Tensor) -> torch.Tensor:
        new = exact.clamp(self.lo, self.hi)
        self.saturated = new != exact
        return new

    def collect(self, current: torch.Tensor, scale, first: bool) -> torch.Tensor:
        if isinstance(scale, bool) or not isinstance(scale, numbers.Integral):
            raise SnnCosimError(f"an integer FS layer needs an integer spike weight d, got {scale!r}")
        if current.dtype != torch.int64:
            current = current.to(torch.int64)
        return super().collect(current, int(scale), first)


class FloatFsNeuron(FsNeuron):
    """The same schedule in float64 without saturation (accuracy studies); tables may be floats (activation
    units)."""

    def __init__(self, params: NeuronParams, threshold, bias):
        super().__init__(params, torch.as_tensor(threshold), torch.as_tensor(bias), torch.float64)

    def collect(self, current: torch.Tensor, scale, first: bool) -> torch.Tensor:
        return super().collect(current, float(scale), first)
