"""Direct training of spiking networks with backpropagation (Lee, Delbruck & Pfeiffer 2016), in discrete time.

The network is trained on the spikes it will see in the golden model and on the RTL: rate-coded inputs from
:func:`golden.simulation.encoding.rate_encode`, LIF neurons of docs/spec.md §3 (``v = sat(v − (v >>> k) + I)``, reset by
subtraction, the floor ``v ≥ −θ_j`` of Lee's clip at −V_th, per-neuron thresholds) and the lateral inhibition of
docs/spec.md §3c (after every neuron of the layer has fired, neuron i loses ``u_i·m_i``, ``m_i`` = spikes of the
other neurons at that step, ``u_i = round(|κ|·θ_i)``; then the floor again).

**Forward** = the exact spiking simulation of the exported integer network. Training is quantisation-aware: every
forward pass quantises the float parameters per layer (scale ``s_l = (2^(b−1)−1) / max|w_l|``; ``W = round(w·s_l)``,
``θ = max(1, round(θ_float·s_l))``, ``u = round(|κ|·θ)``) and runs the integer dynamics on integer-valued floats
(exact below 2^24, the arithmetic shift as ``floor(v·2^-k)``, saturation emulated). So the trainer's "float
simulation" and :class:`golden.simulation.simulate.IntegerSimulator` of :func:`export`'s network compute the same spikes.

**Backward** = Lee's approximations (Sec. 2.2), evaluated on the time-averaged low-pass traces of the sample
(Eq. 4 in discrete time: ``x(t) = γ·x(t−1) + s(t)``, ``γ = 1 − 2^−k`` the leak, reported in units of spikes per
step, i.e. times ``1 − γ``): the spike jumps are noise, ``a_i ≈ s_i/θ_i + σ Σ_j κ a_j`` (Eq. 6) is differentiated
with ``∂a/∂s = 1/θ`` (Eq. 7), the lateral term with Eq. 9 (uniform κ), the thresholds with Eq. 7/13, the errors
normalised layer by layer (Eq. 12–13), the loss on the output spike counts normalised by their maximum
(Eq. 16, error ``(o − y)/sqrt(N_nze)``), exponential weight regularisation (Eq. 14–15) on hidden layers and the
competitive threshold regularisation (Sec. 2.3.2). Weights start at Eq. 10. Optimiser: Adam with
``η_th = η_w`` (Table 1), learning rate and threshold regularisation decayed by ``exp(−1/35)`` per epoch.

Layers: dense (with or without WTA) and convolution (``"8c5s2"``: 8 channels, 5×5, stride 2, optional ``p1``
padding; no WTA, thresholds per channel). Deviations from the paper and every [ambiguous] choice are listed in
docs/training.md.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from golden.core.counters import COUNTER_NAMES
from golden.core.errors import DataError, NetworkFileError, SnnCosimError
from golden.core.network import Conv2dLayer, DenseLayer, IntegerNetwork, NeuronParams, layer_inhibition, signed_range
from golden.data import DEFAULT_TRAIN_SIZE
from golden.data.mnist import DEFAULT_SPLIT_SEED, default_split
from golden.simulation.encoding import rate_encode
from golden.training.ann_trainer import cache_dir as _cache_dir
from golden.training.lee_config import LayerSpec, LeeConfig, parse_layers

__all__ = ["LeeConfig", "LeeTrainer", "LayerSpec", "parse_layers", "train_lee", "export", "default_lee_network",
           "DEFAULT_LEE_CONFIG", "TrainResult", "simulate_counts",
           "network_counts", "encode", "weight_regulariser_grad", "wta_error"]

INPUT_BITS = 8


# ------------------------------------------------------------------------------------------------ configuration
def input_shape_for(hidden: Sequence) -> tuple[int, ...]:
    """(1, 28, 28) when the network starts with a convolution, else (784,)."""
    if hidden and not str(hidden[0]).strip().isdigit():
        return (1, 28, 28)
    return (784,)


# ------------------------------------------------------------------------------------------------ quantisation
@dataclass
class QuantLayer:
    """One layer's integer parameters as integer-valued float tensors (what the forward pass runs on)."""

    weight: torch.Tensor  # integer-valued, weight_shape
    threshold: torch.Tensor  # integer-valued >= 1, [channels]
    inhibition: torch.Tensor | None  # integer-valued u_j = round(|κ|·θ_j), [n_out], or None
    scale: float  # integer units per float unit


def _quantise(weight: torch.Tensor, threshold: torch.Tensor, kappa: float, weight_bits: int,
              membrane_bits: int) -> QuantLayer:
    w_max = float(weight.abs().max())
    q_max = (1 << (weight_bits - 1)) - 1
    scale = q_max / w_max if w_max > 0 else 1.0
    hi = signed_range(membrane_bits)[1]
    # if the thresholds would not fit the membrane, shrink the scale (weights get coarser)
    t_max = float(threshold.max())
    if t_max * scale > hi:
        scale = hi / t_max
    w_int = torch.round(weight * scale).clamp_(-q_max, q_max)
    t_int = torch.round(threshold * scale).clamp_(1, hi)
    u_int = torch.round(abs(kappa) * t_int) if kappa != 0 else None
    return QuantLayer(w_int, t_int, u_int, scale)


# ------------------------------------------------------------------------------------------------ simulation
def _synaptic(spec: LayerSpec, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x [N, n_in] → [N, n_out]`` (conv as unfold + matrix product: no algorithm that could round)."""
    if spec.kind == "dense":
        return x @ weight.t()
    n = x.shape[0]
    cols = F.unfold(x.reshape(n, *spec.in_shape), spec.kernel, padding=spec.padding, stride=spec.stride)
    out = weight.reshape(weight.shape[0], -1) @ cols  # [N, c_out, L]
    return out.reshape(n, -1)


def _per_neuron(spec: LayerSpec, values: torch.Tensor) -> torch.Tensor:
    if spec.kind == "dense":
        return values
    return values.repeat_interleave(spec.out_shape[1] * spec.out_shape[2])


@dataclass
class LayerRecord:
    counts: torch.Tensor  # [B, n_out] spikes over all steps
    trace: torch.Tensor | None  # [B, n_out] mean over steps of the output trace, in spikes per step


def _run_layer(spec: LayerSpec, q: QuantLayer, x_all: torch.Tensor, *, leak_shift: int, membrane_bits: int,
               want_trace: bool) -> tuple[torch.Tensor, LayerRecord]:
    """Simulate one layer for all steps: ``x_all [T, B, n_in]`` (0/1 floats) → spikes ``[T, B, n_out]``.

    Per step exactly docs/spec.md §3 + §3c on integer-valued floats: integrate with the arithmetic-shift leak,
    saturate, floor at −θ, fire, subtract θ, inhibit (``u·m``), saturate, floor again."""
    steps, batch = x_all.shape[0], x_all.shape[1]
    current = _synaptic(spec, x_all.reshape(steps * batch, -1), q.weight).reshape(steps, batch, -1)
    theta = _per_neuron(spec, q.threshold)
    u = q.inhibition
    lo, hi = (float(v) for v in signed_range(membrane_bits))
    leak = math.ldexp(1.0, -leak_shift)
    gamma = 1.0 - leak
    v = torch.zeros((batch, spec.n_out), dtype=current.dtype, device=current.device)
    out = torch.empty_like(current)
    trace = torch.zeros_like(v) if want_trace else None
    trace_sum = torch.zeros_like(v) if want_trace else None
    neg_theta = -theta
    for t in range(steps):
        v = v - torch.floor(v * leak) + current[t]
        v = torch.maximum(v.clamp_(lo, hi), neg_theta)
        s = (v >= theta).to(v.dtype)
        v = v - s * theta
        if u is not None:
            m = s.sum(dim=1, keepdim=True) - s
            v = torch.maximum((v - u * m).clamp_(lo, hi), neg_theta)
        out[t] = s
        if want_trace:
            trace.mul_(gamma).add_(s)
            trace_sum.add_(trace)
    record = LayerRecord(out.sum(0), trace_sum * (leak / steps) if want_trace else None)
    return out, record


def _input_trace(x_all: torch.Tensor, leak_shift: int) -> torch.Tensor:
    """Mean over steps of the input traces (Eq. 4 in discrete time), in spikes per step: ``[B, n_in]``."""
    steps = x_all.shape[0]
    leak = math.ldexp(1.0, -leak_shift)
    gamma = 1.0 - leak
    # Σ_t Σ_{t'≤t} γ^(t−t') s(t') = Σ_t' s(t')·(1 − γ^(T−t'+1))/(1 − γ)
    weights = (1.0 - gamma ** torch.arange(steps, 0, -1, dtype=torch.float64)) / (1.0 - gamma)
    weights = weights.to(x_all.dtype).to(x_all.device)
    return torch.einsum("t,tbn->bn", weights, x_all) * (leak / steps)


# ------------------------------------------------------------------------------------------------ Lee's formulas
def weight_regulariser_grad(weight: torch.Tensor, beta: float, lam: float) -> torch.Tensor:
    """Eq. 15: ``∂L_w/∂w_ij = βλ·w_ij·exp(β(Σ_j w_ij² − 1))`` per neuron i (row, or output channel), the gradient
    of Eq. 14 ``L_w = ½λ·exp(β(Σ_j w_ij² − 1))``. The exponent is capped at 20 so that float32 cannot overflow."""
    sq = (weight.reshape(weight.shape[0], -1) ** 2).sum(1)
    factor = beta * lam * torch.exp((beta * (sq - 1.0)).clamp(max=20.0))
    return factor.reshape(-1, *([1] * (weight.dim() - 1))) * weight


def wta_error(delta: torch.Tensor, theta: torch.Tensor, active: torch.Tensor, mu: float) -> torch.Tensor:
    """Eq. 9 for a WTA group with uniform strength (μ = σ|κ| here): given ``δ_i = e_i/θ_i`` (``e`` = ∂L/∂a of the
    active neurons, any common factor allowed), the per-neuron errors ``δ'`` with ``∂L/∂x_k = Σ_j w_jk δ'_j``:
    ``δ'_j = (δ_j − μ/(1 + μ(n−1)) · Σ_i e_i · (1/θ_j)) / (1 − μ)`` over the n active neurons."""
    n_active = active.sum(1, keepdim=True)
    total = (delta * theta * active).sum(1, keepdim=True)  # Σ_i e_i
    return (delta - mu / (1.0 + mu * (n_active - 1).clamp_min(0)) * total / theta) * active / (1.0 - mu)


# ------------------------------------------------------------------------------------------------ trainer
@dataclass
class EpochStats:
    epoch: int
    loss: float
    train_accuracy: float
    hidden_rate: float  # mean spikes per hidden neuron per sample
    dead_fraction: float  # hidden neurons silent on every sample of the epoch


@dataclass
class TrainResult:
    network: IntegerNetwork
    config: LeeConfig
    history: list[EpochStats] = field(default_factory=list)
    info: dict = field(default_factory=dict)


class LeeTrainer:
    """Float parameters in Lee's units (Eq. 10) plus the discrete-time spiking simulation and Lee's backward pass."""

    def __init__(self, config: LeeConfig, input_shape: tuple[int, ...] | None = None, device=None):
        self.config = config.validate()
        self.device = torch.device(device) if device is not None else (
            torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
        self.input_shape = tuple(input_shape) if input_shape is not None else input_shape_for(config.hidden)
        kappas = (config.kappa_hidden, config.kappa_hidden2, config.kappa_output)
        self.specs = parse_layers(config.hidden, self.input_shape, config.n_classes, kappas=kappas)
        # integer-valued floats are exact in float32 below 2^24
        bound = max((1 << (config.weight_bits - 1)) * s.fan_in for s in self.specs)
        self.dtype = torch.float32 if config.membrane_bits <= 24 and bound < 2 ** 24 else torch.float64
        generator = torch.Generator().manual_seed(config.seed)
        alphas = config.alphas(len(self.specs))
        self.weights: list[torch.Tensor] = []
        self.thresholds: list[torch.Tensor] = []
        self.theta_floor: list[float] = []
        for spec, alpha in zip(self.specs, alphas):
            bound = math.sqrt(3.0 / spec.fan_in)  # Eq. 10
            w = (torch.rand(spec.weight_shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound
            self.weights.append(w.to(self.dtype).to(self.device))
            self.thresholds.append(torch.full((spec.channels,), alpha * bound, dtype=self.dtype, device=self.device))
            self.theta_floor.append(config.theta_min * bound)
        self.optimizer = torch.optim.Adam(
            [{"params": self.weights, "lr": config.lr},
             {"params": self.thresholds, "lr": config.lr if config.lr_threshold is None else config.lr_threshold}],
            betas=(0.9, 0.999), eps=1e-8)
        self.rho = config.rho
        self.epoch = 0

    # -------------------------------------------------------------------------------- forward
    def quantised(self) -> list[QuantLayer]:
        cfg = self.config
        return [_quantise(w, t, spec.kappa, cfg.weight_bits, cfg.membrane_bits)
                for spec, w, t in zip(self.specs, self.weights, self.thresholds)]

    def forward(self, spikes: torch.Tensor, *, want_traces: bool = False,
                quant: list[QuantLayer] | None = None) -> list[LayerRecord]:
        """Run ``spikes [T, B, n_0]`` (bool) through the network; one record per layer (input first when
        ``want_traces``)."""
        quant = self.quantised() if quant is None else quant
        x = spikes.to(self.device, self.dtype)
        records = []
        if want_traces:
            records.append(LayerRecord(x.sum(0), _input_trace(x, self.config.leak_shift)))
        for spec, q in zip(self.specs, quant):
            x, record = _run_layer(spec, q, x, leak_shift=self.config.leak_shift,
                                   membrane_bits=self.config.membrane_bits, want_trace=want_traces)
            records.append(record)
        return records

    def predict(self, spikes: torch.Tensor, batch_size: int = 500) -> np.ndarray:
        """Class = argmax of the output spike counts (ties to the lowest index, as the golden model)."""
        quant = self.quantised()
        out = []
        with torch.no_grad():
            for start in range(0, spikes.shape[1], batch_size):
                counts = self.forward(spikes[:, start:start + batch_size], quant=quant)[-1].counts
                out.append(counts.argmax(dim=1).cpu().numpy())  # torch argmax: first maximum
        return np.concatenate(out).astype(np.int64)

    # -------------------------------------------------------------------------------- backward
    def _gradients(self, records: list[LayerRecord], labels: torch.Tensor, quant: list[QuantLayer],
                   steps: int) -> float:
        """Set ``.grad`` of every weight and threshold (Lee Eq. 7, 9, 12, 13, 15, 16); return the batch loss."""
        cfg = self.config
        n_layers = len(self.specs)
        batch = labels.shape[0]
        counts_out = records[-1].counts
        peak = counts_out.max(dim=1, keepdim=True).values
        o = counts_out / peak.clamp_min(1.0)  # o_i = #spike_i / max_j #spike_j (0 when silent)
        y = F.one_hot(labels, cfg.n_classes).to(o.dtype)
        diff = o - y
        loss = 0.5 * float((diff ** 2).sum(1).mean())
        n_nze = (diff != 0).sum(1, keepdim=True).clamp_min(1).to(o.dtype)
        e_o = diff / n_nze.sqrt()  # ∂L/∂o (Eq. 16 and its normalisation)
        # chain rule through o = count/max (in units of the max count): ∂L/∂c_j·c_max = e_j − ∂max/∂c_j·Σ_i e_i o_i.
        # Without the second term every wrong output is pushed down and the whole network falls silent.
        # ∂max/∂c_j: 1 for the only maximum; with saturation_aware (docs/training.md) 1/n over n tied maxima
        # (giving it all to the first one pushed an arbitrary output up and collapsed 784-300-10 to chance) and 0
        # when the max sits at the one-spike-per-step ceiling (it cannot grow; then o = count/steps).
        if cfg.saturation_aware:
            winner = (counts_out == peak).to(o.dtype) * ((peak > 0) & (peak < steps)).to(o.dtype)
            winner = winner / winner.sum(1, keepdim=True).clamp_min(1)
        else:
            winner = F.one_hot(counts_out.argmax(dim=1), cfg.n_classes).to(o.dtype) * (peak > 0).to(o.dtype)
        error = e_o - winner * (e_o * o).sum(1, keepdim=True)
        for l in range(n_layers - 1, -1, -1):
            spec, q = self.specs[l], quant[l]
            x_hat = records[l].trace  # input traces of layer l (layer l−1's output traces)
            a = records[l + 1].trace
            theta = _per_neuron(spec, q.threshold) / q.scale  # effective float thresholds
            w_eff = q.weight / q.scale
            g = (1.0 / theta).expand(batch, -1)
            is_output = l == n_layers - 1
            active = torch.ones_like(a) if is_output else (records[l + 1].counts > 0).to(a.dtype)
            n_active = active.sum(1, keepdim=True)
            if cfg.error_normalisation:
                g_bar = ((g ** 2 * active).sum(1, keepdim=True) / n_active.clamp_min(1)).sqrt()
                delta = g / g_bar.clamp_min(1e-12) * error * active  # Eq. 12 (error already carries √(M/m))
            else:
                delta = g * error * active
            # Eq. 13 normalisations: N = neurons of the layer, m = active inputs, M = inputs per neuron
            m_in = (records[l].counts > 0).sum(1, keepdim=True).to(a.dtype).clamp_min(1)
            n_neurons = float(spec.n_out)
            c_w = (n_neurons / m_in).sqrt() if cfg.error_normalisation else torch.ones_like(m_in)
            c_t = (n_neurons / (m_in * spec.fan_in)).sqrt() if cfg.error_normalisation else torch.ones_like(m_in)
            mu = abs(spec.kappa) * cfg.sigma  # Eq. 9 with μ = |κ| (see docs/training.md)
            if spec.kappa != 0:
                # â_i = γ a_i − σ Σ_{j≠i} κ a_j with γ = 1, over active neurons
                a_act = a * active
                a_hat = a + mu * (a_act.sum(1, keepdim=True) - a_act)
            else:
                a_hat = a
            # weights: ∂L/∂w_ij = δ_i x̂_j (Eq. 7, 13); thresholds: ∂L/∂θ_i = −δ_i â_i (Eq. 7 with the sign of a
            # gradient; Eq. 13 of the paper prints ΔV_th = −η δ â)
            if spec.kind == "dense":
                grad_w = (delta * c_w).t() @ x_hat / batch
                grad_t = -(delta * c_t * a_hat).sum(0) / batch
            else:
                x_req = x_hat.detach().requires_grad_(False)
                w_req = w_eff.detach().clone().requires_grad_(True)
                with torch.enable_grad():
                    out = _synaptic(spec, x_req, w_req)
                    grad_w, = torch.autograd.grad(out, w_req, grad_outputs=delta * c_w / batch)
                grad_t = -(delta * c_t * a_hat).sum(0).reshape(spec.channels, -1).sum(1) / batch
            if not is_output and cfg.lam > 0:  # Eq. 15, hidden layers only
                grad_w = grad_w + weight_regulariser_grad(self.weights[l], cfg.beta, cfg.lam)
            self.weights[l].grad = grad_w.to(self.dtype)
            self.thresholds[l].grad = grad_t.to(self.dtype)
            if l == 0:
                break
            # error into the previous layer: Eq. 9 (WTA) then Eq. 12's √(M/m) of the layer below
            if spec.kappa != 0:
                delta_in = wta_error(delta, theta, active, mu)
            else:
                delta_in = delta
            if spec.kind == "dense":
                back = delta_in @ w_eff
            else:
                x_req = torch.zeros_like(x_hat).requires_grad_(True)
                with torch.enable_grad():
                    out = _synaptic(spec, x_req, w_eff)
                    back, = torch.autograd.grad(out, x_req, grad_outputs=delta_in)
            below_active = (records[l].counts > 0).to(a.dtype)
            if cfg.error_normalisation:
                m_below = below_active.sum(1, keepdim=True).clamp_min(1)
                back = back * (float(spec.n_in) / m_below).sqrt()
            error = back * below_active
        return loss

    def _regularise_thresholds(self, records: list[LayerRecord]) -> None:
        """Competitive threshold regularisation (Sec. 2.3.2) on dense hidden layers: per step, the N_w firing
        neurons get +ρN and all N get −ρN_w; summed over the sample that is ρN·(count_i − mean_j count_j) (mean
        over the batch). A threshold that would fall below its floor stays there and the neuron's weights rise by
        the deficit instead."""
        if self.rho <= 0:
            return
        for l, spec in enumerate(self.specs[:-1]):
            if spec.kind != "dense":
                continue
            counts = records[l + 1].counts
            n = float(spec.n_out)
            change = (self.rho * n * (counts - counts.mean(1, keepdim=True))).mean(0)
            self._apply_threshold_change(l, change)

    def _apply_threshold_change(self, l: int, change: torch.Tensor) -> None:
        theta = self.thresholds[l]
        new = theta + change
        floor = self.theta_floor[l]
        deficit = (floor - new).clamp_min(0)
        with torch.no_grad():
            theta.copy_(new + deficit)
            if bool((deficit > 0).any()):
                # [ambiguous] "raised by the same amount": the deficit d is spread over the M weights (+d/M each),
                # so that Σ_k Δw_k = d; adding d to every weight would multiply a neuron's drive by ~M/α
                raise_by = deficit / self.specs[l].fan_in
                self.weights[l].add_(raise_by.reshape(-1, *([1] * (self.weights[l].dim() - 1))))

    def train_batch(self, spikes: torch.Tensor, labels: torch.Tensor) -> tuple[float, torch.Tensor, list]:
        quant = self.quantised()
        with torch.no_grad():
            records = self.forward(spikes, want_traces=True, quant=quant)
            loss = self._gradients(records, labels.to(self.device), quant, int(spikes.shape[0]))
        self.optimizer.step()
        with torch.no_grad():
            for l, theta in enumerate(self.thresholds):
                theta.clamp_(min=self.theta_floor[l])
            self._regularise_thresholds(records)
        return loss, records[-1].counts.argmax(1), records

    def end_epoch(self) -> None:
        self.epoch += 1
        for group in self.optimizer.param_groups:
            group["lr"] *= self.config.lr_decay
        self.rho *= self.config.lr_decay


# ------------------------------------------------------------------------------------------------ data helpers
def _codes(images) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if tensor.dtype != torch.uint8:
        raise DataError(f"images must be uint8 pixel codes 0..255, got {tensor.dtype}")
    return tensor.reshape(tensor.shape[0], -1)


def _epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + 7919 * (epoch + 1)) & 0x7FFF_FFFF


def encode(images, steps: int, *, max_rate: float = 1.0, seed: int = 0, first_index: int = 0) -> torch.Tensor:
    """Rate-coded spikes of uint8 images exactly as the rest of the project makes them (:func:`rate_encode`)."""
    return rate_encode(_codes(images), steps, max_rate=max_rate, seed=seed, first_index=first_index)


def simulate_counts(trainer: LeeTrainer, spikes: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """Output spike counts ``[N, n_out]`` of the trainer's simulation."""
    quant = trainer.quantised()
    out = []
    with torch.no_grad():
        for start in range(0, spikes.shape[1], batch_size):
            out.append(trainer.forward(spikes[:, start:start + batch_size], quant=quant)[-1].counts.cpu().numpy())
    return np.concatenate(out).astype(np.int64)


def network_counts(network: IntegerNetwork, spikes: torch.Tensor, *, device="cpu",
                   batch_size: int = 500) -> np.ndarray:
    """Output spike counts ``[N, n_out]`` of an exported network run by the trainer's own forward pass (read
    back from the integer arrays): the "float simulation" of a network file, for agreement checks."""
    specs, quant = [], []
    for layer in network.layers:
        neuron = layer.neuron
        if neuron.kind != "lif" or neuron.reset != "subtract" or not neuron.floor_threshold or layer.bias.any():
            raise SnnCosimError("network_counts runs bias-free LIF networks with floor_threshold (direct_train "
                                "exports) only")
        inhibition = layer_inhibition(layer)
        if layer.kind == "dense":
            specs.append(LayerSpec("dense", (layer.n_in,), (layer.n_out,), kappa=-1.0 if inhibition is not None
                                   else 0.0))
        elif layer.kind == "conv2d":
            specs.append(LayerSpec("conv2d", tuple(layer.in_shape), tuple(layer.out_shape),
                                   int(layer.weight.shape[2]), int(layer.stride[0]), int(layer.padding[0])))
        else:
            raise SnnCosimError(f"network_counts: layer kind {layer.kind!r} is not produced by direct_train")
        as_float = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64, device=device)  # noqa: E731
        quant.append(QuantLayer(as_float(layer.weight), as_float(layer.threshold),
                                None if inhibition is None else as_float(inhibition), 1.0))
    out = []
    with torch.no_grad():
        for start in range(0, spikes.shape[1], batch_size):
            x = spikes[:, start:start + batch_size].to(device, torch.float64)
            for spec, q, layer in zip(specs, quant, network.layers):
                x, record = _run_layer(spec, q, x, leak_shift=layer.neuron.leak_shift,
                                       membrane_bits=network.membrane_bits, want_trace=False)
            out.append(record.counts.cpu().numpy())
    return np.concatenate(out).astype(np.int64)


# ------------------------------------------------------------------------------------------------ export
def export(trainer: LeeTrainer, metadata: dict | None = None) -> IntegerNetwork:
    """The trained network as a validated :class:`IntegerNetwork`: bias-free, ``NeuronParams("lif", "subtract",
    leak_shift, floor_threshold=True)``, integer per-neuron (per-channel for conv) thresholds, WTA strengths
    ``u_j = round(|κ|·θ_j)`` on dense layers with κ ≠ 0, input coding "rate" (8-bit pixel codes)."""
    cfg = trainer.config
    neuron = NeuronParams("lif", "subtract", leak_shift=cfg.leak_shift, floor_threshold=True)
    layers = []
    for index, (spec, q) in enumerate(zip(trainer.specs, trainer.quantised()), start=1):
        weight = q.weight.detach().cpu().to(torch.float64).numpy().astype(np.int64)
        threshold = q.threshold.detach().cpu().to(torch.float64).numpy().astype(np.int64)
        bias = np.zeros(spec.channels, dtype=np.int64)
        name = f"lee{index}"
        if spec.kind == "dense":
            inhibition = None if q.inhibition is None else \
                q.inhibition.detach().cpu().to(torch.float64).numpy().astype(np.int64)
            layers.append(DenseLayer(weight, bias, threshold, neuron, name, inhibition=inhibition))
        else:
            layers.append(Conv2dLayer(weight, bias, threshold, tuple(spec.in_shape), (spec.stride, spec.stride),
                                      (spec.padding, spec.padding), neuron, name))
    meta = {"direct_training": {
        "method": "Lee, Delbruck & Pfeiffer 2016 (discrete time)", "hidden": [str(h) for h in cfg.hidden],
        "steps": cfg.steps, "test_steps": cfg.eval_steps, "max_rate": cfg.max_rate, "leak_shift": cfg.leak_shift,
        "kappa": [spec.kappa for spec in trainer.specs], "scales": [q.scale for q in trainer.quantised()],
        "epochs_trained": trainer.epoch, "seed": cfg.seed}}
    if metadata:
        meta.update(metadata)
    network = IntegerNetwork(input_shape=trainer.input_shape, layers=layers, weight_bits=cfg.weight_bits,
                             membrane_bits=cfg.membrane_bits, input_coding="rate", input_bits=INPUT_BITS,
                             metadata=meta)
    return network.validate()


# ------------------------------------------------------------------------------------------------ training loop
def _resolve_progress(progress) -> bool:
    if progress is None:
        return sys.stderr.isatty()
    return bool(progress)


def train_lee(train_images, train_labels, config: LeeConfig = LeeConfig(), *, test_images=None, test_labels=None,
              device=None, progress: bool | None = True, threads: int | None = 1,
              agreement_images: int | None = None) -> TrainResult:
    """Train a spiking network on uint8 images (``[N, 28, 28]`` or ``[N, 784]``) and int labels; export it.

    With test data the result's ``info`` holds the test accuracy of the trainer's simulation (``float_accuracy``)
    and, when the golden integer simulator is given the same spikes, ``integer_accuracy`` and ``agreement`` (the
    fraction of test images on which both predict the same class), over ``agreement_images`` images (all by
    default). ``threads`` (default 1, None: leave alone) is the torch CPU thread count during training."""
    config = config.validate()
    codes = _codes(train_images)
    labels = torch.as_tensor(np.asarray(train_labels)).to(torch.int64).reshape(-1)
    if codes.shape[0] != labels.shape[0] or codes.shape[0] == 0:
        raise DataError(f"{codes.shape[0]} images but {labels.shape[0]} labels; pass one label per image")
    if int(labels.min()) < 0 or int(labels.max()) >= config.n_classes:
        raise DataError(f"labels must lie in 0..{config.n_classes - 1}")
    input_shape = input_shape_for(config.hidden)
    if int(np.prod(input_shape)) != codes.shape[1]:
        raise DataError(f"images have {codes.shape[1]} pixels; the network takes {int(np.prod(input_shape))}")
    show = _resolve_progress(progress)
    previous_threads = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise SnnCosimError(f"threads={threads} must be at least 1")
        torch.set_num_threads(threads)
    try:
        trainer = LeeTrainer(config, input_shape, device)
        generator = torch.Generator().manual_seed(config.seed)
        history: list[EpochStats] = []
        n = codes.shape[0]
        batches = max(1, math.ceil(n / config.batch_size))
        bar = tqdm(total=config.epochs * batches, desc="lee training", unit="batch", disable=not show,
                   leave=False)
        try:
            for epoch in range(config.epochs):
                order = torch.randperm(n, generator=generator)
                seed = _epoch_seed(config.seed, epoch)
                loss_sum, correct, hidden_spikes, ever = 0.0, 0, 0.0, None
                for b in range(batches):
                    index = order[b * config.batch_size:(b + 1) * config.batch_size]
                    spikes = rate_encode(codes[index], config.steps, max_rate=config.max_rate, seed=seed,
                                         first_index=int(b * config.batch_size))
                    loss, pred, records = trainer.train_batch(spikes, labels[index])
                    loss_sum += loss * len(index)
                    correct += int((pred.cpu() == labels[index]).sum())
                    if len(records) > 2:
                        hidden = records[1].counts
                        hidden_spikes += float(hidden.mean(1).sum())
                        fired = (hidden > 0).any(0)
                        ever = fired if ever is None else ever | fired
                    bar.update(1)
                trainer.end_epoch()
                stats = EpochStats(epoch + 1, loss_sum / n, correct / n, hidden_spikes / n,
                                   0.0 if ever is None else float(1.0 - ever.to(torch.float64).mean()))
                history.append(stats)
                bar.set_postfix(epoch=epoch + 1, loss=f"{stats.loss:.4f}", acc=f"{100 * stats.train_accuracy:.1f}%")
        finally:
            bar.close()
        info: dict = {"epochs": config.epochs, "steps": config.steps, "test_steps": config.eval_steps,
                      "train_images": int(n), "final_loss": history[-1].loss,
                      "train_accuracy": history[-1].train_accuracy, "dead_fraction": history[-1].dead_fraction,
                      "hidden_rate": history[-1].hidden_rate}
        network = export(trainer)
        if test_images is not None:
            info.update(evaluate(trainer, network, test_images, test_labels, steps=config.eval_steps,
                                 agreement_images=agreement_images, progress=show))
        network.metadata["direct_training"].update(
            {k: info[k] for k in ("float_accuracy", "integer_accuracy", "agreement") if k in info})
    finally:
        torch.set_num_threads(previous_threads)
    return TrainResult(network=network, config=config, history=history, info=info)


def evaluate(trainer: LeeTrainer, network: IntegerNetwork, images, labels, *, steps: int, seed: int = 0,
             agreement_images: int | None = None, progress: bool = False) -> dict:
    """Test accuracy of the trainer's simulation and of the golden integer simulation on the same spikes (seed
    ``seed``), and their prediction agreement."""
    from golden.simulation.simulate import IntegerSimulator

    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    spikes = encode(images, steps, max_rate=trainer.config.max_rate, seed=seed)
    float_pred = trainer.predict(spikes)
    out = {"float_accuracy": float((float_pred == labels).mean()), "test_images": int(labels.shape[0])}
    k = labels.shape[0] if agreement_images is None else min(int(agreement_images), labels.shape[0])
    if k > 0:
        trace = IntegerSimulator(network, device=trainer.device).run(spikes[:, :k], progress=progress)
        out["integer_accuracy"] = float((trace.predictions == labels[:k]).mean())
        out["agreement"] = float((trace.predictions == float_pred[:k]).mean())
        out["agreement_images"] = int(k)
        out["saturations"] = int(trace.counters[..., _counter_index("saturations")].sum())
    return out


def _counter_index(name: str) -> int:
    return COUNTER_NAMES.index(name)


# ------------------------------------------------------------------------------------------------ default network
DEFAULT_LEE_CONFIG = LeeConfig()


def default_lee_network(cache_dir=None, progress=None, *, config: LeeConfig = DEFAULT_LEE_CONFIG,
                        train_subset: int | None = None) -> tuple[IntegerNetwork, dict]:
    """The project's default directly trained network (``config``, default 784-100-10, WTA −0.4 / −1.0, LIF
    leak_shift 5, 32 steps) trained on the 8 000-image train part of the embedded MNIST set and cached as the
    integer-network directory ``lee-<recipe hash>.snn`` under ``cache_dir`` (else ``$SNNCOSIM_CACHE``, else
    ``~/.cache/snncosim``). Returns ``(network, info)``; ``info`` holds the test-part accuracy of the float and
    integer simulations, their agreement, the steps, and the training history. A damaged cache entry is rebuilt."""
    directory = _cache_dir(cache_dir)
    key = config.key() if train_subset is None else f"{config.key()}-n{int(train_subset)}"
    path = directory / f"lee-{key}.snn"
    if path.is_dir():
        try:
            network = IntegerNetwork.load(path)
            info = dict(network.metadata.get("info", {}))
            if info:
                return network, info
        except NetworkFileError:
            pass
    split = default_split(DEFAULT_TRAIN_SIZE, DEFAULT_SPLIT_SEED)
    images, labels = split.train_images, split.train_labels
    if train_subset is not None:
        images, labels = images[:train_subset], labels[:train_subset]
    result = train_lee(images, labels, config, test_images=split.test_images, test_labels=split.test_labels,
                       progress=progress, device="cpu")
    info = dict(result.info)
    info["history"] = [dataclasses.asdict(h) for h in result.history]
    info["config"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()}
    network = result.network
    network.metadata["info"] = info
    directory.mkdir(parents=True, exist_ok=True)
    network.save(path)
    return IntegerNetwork.load(path), info
