"""FS-neuron tables (Stöckl & Maass 2021; notes/004; docs/spec.md §3b).

An FS ("few spikes") neuron emulates one ANN unit with activation f in K steps. It starts from its whole input,
``v = x``, and for t = 1..K fires ``z(t) = v ≥ T(t)`` and subtracts ``v −= h(t)·z(t)``; its output value is
``f̂(x) = Σ_t d(t)·z(t)``, which the next layer receives as ``w·d(t)`` per spike at step t. Three tables of K
numbers per activation, shared by all neurons of that activation:

* :class:`FsTable` — the float tables in activation units (the paper's form), with the float response
  :func:`fs_response` (vectorised, numpy or torch);
* :class:`IntegerFsTable` — the integer tables of an :class:`~golden.core.network.IntegerNetwork` layer (``T``, ``h`` in
  the layer's membrane units, ``d`` in the next layer's weight units), with the exact integer response
  :func:`fs_integer_response` (saturating like the hardware's membrane).

ReLU has an analytic table (notes/004 §2.6): ``T = h = d = α·2^-t`` sends ``clamp(⌊x·2^K/α⌋, 0, 2^K − 1)`` MSB
first (with the ``≥`` comparison of SPEC §1), so in integers ``T = h = θ·2^(K−t)``, ``d = 2^(K−t)``
(:func:`relu_integer_table`): the neuron sends ``clamp(⌊v/θ⌋, 0, 2^K − 1)`` and the receiving side adds
``w << (K−t)``, a shift.

SiLU and sigmoid tables are fitted (:func:`fit_table`) by gradient descent through the K steps with a triangle
pseudo-derivative for the Heaviside step (paper §1.2, notes/004 §2.5): our own procedure, described at
:func:`fit_table`. The full-quality fits are made by ``scripts/fit_fs_tables.py`` and shipped as data in
``golden/conversion/fs_tables.json`` (:func:`load_tables`, :func:`table_for`). :func:`quantize_table` turns a float table
into integers for a layer scale; with ``shift_only`` the ``d`` entries are signed powers of two, so the receiving
datapath needs a shifter instead of a multiplier (tables fitted with ``shift_only=True`` lose little accuracy).
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from golden.core.errors import SnnCosimError, UnsupportedLayerError, WidthError
from golden.core.network import MAX_PHASES, NeuronParams, signed_bits_for, signed_range

__all__ = [
    "FsTable", "IntegerFsTable", "FitSpec", "FitResult", "FIT_SPECS", "ACTIVATIONS", "TABLES_PATH",
    "fs_response", "fs_integer_response", "relu_table", "relu_integer_table", "fit_table", "quantize_table",
    "load_tables", "save_tables", "table_for", "signed_power_of_two", "is_signed_power_of_two", "input_weights",
    "table_mse", "REPORT_REGION",
]

TABLES_PATH = Path(__file__).with_name("fs_tables.json")
TABLES_VERSION = 1


def _silu(x):
    return x * torch.sigmoid(x)


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "silu": _silu,
    "sigmoid": torch.sigmoid,
}


def _check_activation(activation: str) -> str:
    if activation == "swish":
        activation = "silu"
    if activation not in ACTIVATIONS:
        raise UnsupportedLayerError(
            f"no FS table for activation {activation!r}; FS tables exist for "
            f"{', '.join(repr(a) for a in ACTIVATIONS)} (fit another with golden.conversion.fs_tables.fit_table)")
    return activation


def _check_phases(phases) -> int:
    if isinstance(phases, bool) or not isinstance(phases, numbers.Integral) or not 1 <= phases <= MAX_PHASES:
        raise WidthError(f"FS neurons need K in 1..{MAX_PHASES} steps (input codes of K bits), got {phases!r}")
    return int(phases)


# ----------------------------------------------------------------------------------------------- responses
def fs_response(x, threshold, reset, weight, *, strict: bool = False):
    """Float FS neuron (paper Eq. 1–3) on every element of ``x``: returns ``(f̂(x), spikes)``, both shaped like
    ``x`` (numpy in → numpy out, torch in → torch out; spikes counted per element). ``strict`` uses the reference
    code's ``v > T`` instead of SPEC's ``v ≥ T``."""
    as_numpy = not isinstance(x, torch.Tensor)
    v = torch.as_tensor(np.asarray(x, dtype=np.float64)) if as_numpy else x
    out = torch.zeros_like(v)
    spikes = torch.zeros_like(v)
    for t_thr, t_h, t_d in zip(threshold, reset, weight):
        z = (v > t_thr) if strict else (v >= t_thr)
        z = z.to(v.dtype)
        out = out + t_d * z
        v = v - t_h * z
        spikes = spikes + z
    if as_numpy:
        return out.numpy(), spikes.numpy().astype(np.int64)
    return out, spikes


def fs_integer_response(v, threshold, reset, weight, *, membrane_bits: int | None = None):
    """Exact integer FS neuron of docs/spec.md §3b on the collected membranes ``v`` (any integer array): returns
    ``(out, spikes, v_end, saturated)`` as int64 arrays shaped like ``v`` (``out = Σ_t d[t]·z(t)``; ``spikes`` the
    number of spikes; ``v_end`` the membrane after step K; ``saturated`` the number of steps whose write
    ``v − h[t]`` clipped at ``membrane_bits``, which is None for an unbounded membrane)."""
    v = np.asarray(v, dtype=np.int64).copy()
    lo, hi = signed_range(membrane_bits) if membrane_bits else (None, None)
    out = np.zeros_like(v)
    spikes = np.zeros_like(v)
    saturated = np.zeros_like(v)
    for t_thr, t_h, t_d in zip(threshold, reset, weight):
        z = v >= int(t_thr)
        exact = v - int(t_h) * z
        if lo is not None:
            new = np.clip(exact, lo, hi)
            saturated += new != exact
            exact = new
        v = exact
        out += int(t_d) * z
        spikes += z
    return out, spikes, v, saturated


def input_weights(phases: int) -> tuple[int, ...]:
    """The spike weights of the FS input layer, ``d_in[t] = 2^(K−t)``: a K-bit code sent MSB first adds up to the
    code itself."""
    phases = _check_phases(phases)
    return tuple(1 << (phases - t) for t in range(1, phases + 1))


def table_mse(table: "FsTable", lo: float, hi: float, *, points: int = 100_001,
              region: tuple[float, float] | None = None, strict: bool = False) -> float:
    """Mean squared error of ``table`` against its activation on a uniform grid of ``points`` over [lo, hi],
    restricted to ``region`` (inside, closed) when given."""
    f = ACTIVATIONS[_check_activation(table.activation)]
    x = torch.linspace(lo, hi, points, dtype=torch.float64)
    out, _ = fs_response(x, table.threshold, table.reset, table.weight, strict=strict)
    err = (out - f(x)) ** 2
    if region is not None:
        err = err[(x >= region[0]) & (x <= region[1])]
    return float(err.mean())


# ----------------------------------------------------------------------------------------------- tables
def _floats(values) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1))


@dataclass(frozen=True)
class FsTable:
    """Float FS tables in activation units: ``threshold`` T(1..K), ``reset`` h(1..K), ``weight`` d(1..K).

    ``meta`` holds how the table was made (fit interval, MSEs, …) and takes no part in comparisons."""

    activation: str
    threshold: tuple[float, ...]
    reset: tuple[float, ...]
    weight: tuple[float, ...]
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in ("threshold", "reset", "weight"):
            object.__setattr__(self, name, _floats(getattr(self, name)))
        if not len(self.threshold) == len(self.reset) == len(self.weight) >= 1:
            raise SnnCosimError(f"FS tables need T, h and d of the same length K >= 1, got "
                                f"{len(self.threshold)}, {len(self.reset)}, {len(self.weight)}")
        if not all(math.isfinite(v) for v in self.threshold + self.reset + self.weight):
            raise SnnCosimError("FS table entries must be finite numbers")

    @property
    def phases(self) -> int:
        return len(self.threshold)

    @property
    def shift_only(self) -> bool:
        """True when every d entry is a signed power of two (a shift-only receiving datapath)."""
        return all(v != 0 and math.frexp(abs(v))[0] == 0.5 for v in self.weight)

    def response(self, x, *, strict: bool = False):
        """``(f̂(x), spikes)`` of :func:`fs_response`."""
        return fs_response(x, self.threshold, self.reset, self.weight, strict=strict)

    def mse(self, lo: float, hi: float, *, points: int = 100_001, region: tuple[float, float] | None = None) -> float:
        return table_mse(self, lo, hi, points=points, region=region)

    def to_dict(self) -> dict:
        return {"activation": self.activation, "phases": self.phases, "shift_only": self.shift_only,
                "threshold": list(self.threshold), "reset": list(self.reset), "weight": list(self.weight),
                **({"meta": self.meta} if self.meta else {})}

    @classmethod
    def from_dict(cls, entry: dict) -> "FsTable":
        return cls(entry["activation"], entry["threshold"], entry["reset"], entry["weight"],
                   dict(entry.get("meta", {})))


def is_signed_power_of_two(value) -> bool:
    """True for integers ±2^k (k ≥ 0); 0 is not a power of two."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        return False
    a = abs(int(value))
    return a != 0 and a & (a - 1) == 0


def signed_power_of_two(values) -> np.ndarray:
    """The nearest signed power of two of every entry in the log domain, ``sign(x)·2^round(log2|x|)`` (float64;
    the exponent may be negative). Zero has no such neighbour and raises :class:`SnnCosimError`."""
    arr = np.asarray(values, dtype=np.float64)
    if np.any(arr == 0) or not np.all(np.isfinite(arr)):
        raise SnnCosimError("a zero or non-finite FS weight d cannot be a signed power of two; refit the table with "
                            "shift_only=True")
    return np.sign(arr) * np.exp2(np.round(np.log2(np.abs(arr))))


@dataclass(frozen=True)
class IntegerFsTable:
    """Integer tables of one FS layer: ``threshold`` T and ``reset`` h in the layer's membrane units, ``weight``
    d in the next layer's weight units (what :class:`~golden.core.network.NeuronParams` holds)."""

    threshold: tuple[int, ...]
    reset: tuple[int, ...]
    weight: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in ("threshold", "reset", "weight"):
            values = tuple(getattr(self, name))
            if not all(isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool) for v in values):
                raise SnnCosimError(f"integer FS table {name} must hold integers, got {list(values)}")
            object.__setattr__(self, name, tuple(int(v) for v in values))
        if not len(self.threshold) == len(self.reset) == len(self.weight) >= 1:
            raise SnnCosimError("integer FS tables need T, h and d of the same length K >= 1")

    @property
    def phases(self) -> int:
        return len(self.threshold)

    @property
    def shift_only(self) -> bool:
        return all(is_signed_power_of_two(v) for v in self.weight)

    def neuron_params(self) -> NeuronParams:
        return NeuronParams("fs", fs_threshold=self.threshold, fs_reset=self.reset, fs_weight=self.weight)

    def membrane_bits(self) -> int:
        """The smallest membrane width holding every entry."""
        values = self.threshold + self.reset + self.weight
        return signed_bits_for(min(values), max(values))

    def response(self, v, *, membrane_bits: int | None = None):
        """:func:`fs_integer_response` of these tables."""
        return fs_integer_response(v, self.threshold, self.reset, self.weight, membrane_bits=membrane_bits)


def relu_table(phases: int, alpha: float = 1.0) -> FsTable:
    """The analytic ReLU table ``T = h = d = α·2^-t`` (paper §1.2.2): ``f̂(x) = α·2^-K·clamp(⌊x·2^K/α⌋, 0,
    2^K − 1)``, within ``α·2^-K`` of ReLU(x) for x < α."""
    phases = _check_phases(phases)
    if not (isinstance(alpha, numbers.Real) and math.isfinite(alpha) and alpha > 0):
        raise SnnCosimError(f"the ReLU range alpha must be a positive number, got {alpha!r}")
    values = [math.ldexp(float(alpha), -t) for t in range(1, phases + 1)]
    return FsTable("relu", values, values, values, {"alpha": float(alpha)})


def relu_integer_table(phases: int, theta: int = 1) -> IntegerFsTable:
    """Integer ReLU tables: ``T = h = θ·2^(K−t)``, ``d = 2^(K−t)``. The neuron sends ``n = clamp(⌊v/θ⌋, 0,
    2^K − 1)`` MSB first and the next layer receives ``Σ_t w·z(t) << (K−t) = w·n`` (exact, shifts only)."""
    phases = _check_phases(phases)
    if isinstance(theta, bool) or not isinstance(theta, (numbers.Integral, np.integer)) or theta < 1:
        raise SnnCosimError(f"the ReLU layer scale theta must be a positive integer, got {theta!r}")
    d = input_weights(phases)
    return IntegerFsTable(tuple(int(theta) * v for v in d), tuple(int(theta) * v for v in d), d)


def quantize_table(table: FsTable, scale: float, weight_scale: float, *, shift_only: bool = False) -> IntegerFsTable:
    """Integer tables of a layer whose membrane holds ``scale`` units per activation unit and whose outgoing d is
    counted in ``1/weight_scale`` activation units: ``T = round(T·scale)``, ``h = round(h·scale)``,
    ``d = round(d·weight_scale)`` (half to even). With ``shift_only`` every d becomes the nearest signed power of
    two of ``d·weight_scale`` (log domain, at least 1 in magnitude), so the next layer shifts instead of
    multiplying. The next layer's weights must then be divided by ``weight_scale`` (``golden.conversion.fs_convert`` does).
    A d that rounds to 0 without ``shift_only`` is kept as 0 (that step's spikes carry nothing)."""
    for name, value in (("scale", scale), ("weight_scale", weight_scale)):
        if not (isinstance(value, numbers.Real) and math.isfinite(value) and value > 0):
            raise SnnCosimError(f"{name} must be a positive number, got {value!r}")
    thr = np.rint(np.asarray(table.threshold) * scale).astype(np.int64)
    rst = np.rint(np.asarray(table.reset) * scale).astype(np.int64)
    scaled_d = np.asarray(table.weight) * weight_scale
    if shift_only:
        d = signed_power_of_two(scaled_d)
        d = np.sign(d) * np.maximum(np.abs(d), 1.0)
    else:
        d = np.rint(scaled_d)
    return IntegerFsTable(tuple(thr.tolist()), tuple(rst.tolist()), tuple(int(v) for v in d))


# ----------------------------------------------------------------------------------------------- fitting
@dataclass(frozen=True)
class FitSpec:
    """What a fit of one activation uses by default: K, the fit interval (paper: [−8, 12] for SiLU, [−10, 10]
    for sigmoid), a region of the loss weighted by ``emphasis_weight`` (paper: SiLU emphasises [−2, 2]) and the
    start point of the initial table, the learning rate and the spike penalty (see :func:`fit_table`; chosen by a
    small sweep: SiLU's penalty brings the mean spikes under the paper's Fig. 7 input model to about 2 while both
    MSEs stay below the paper's)."""

    activation: str
    phases: int
    interval: tuple[float, float]
    emphasis: tuple[float, float] | None = None
    emphasis_weight: float = 1.0
    init_offset: float = 0.0
    lr: float = 0.01
    spike_penalty: float = 0.0


FIT_SPECS = {
    "silu": FitSpec("silu", 16, (-8.0, 12.0), (-2.0, 2.0), 10.0, init_offset=0.0, lr=0.01, spike_penalty=1e-3),
    "sigmoid": FitSpec("sigmoid", 12, (-10.0, 10.0), None, 1.0, init_offset=-6.0, lr=0.04, spike_penalty=1e-4),
}
REPORT_REGION = (-2.0, 2.0)  # the paper reports the SiLU MSE inside and outside [−2, 2]


class _Heaviside(torch.autograd.Function):
    """``z = (u ≥ 0)`` with the triangle pseudo-derivative ``dz/du = max(0, 1 − |u|/γ)/γ``."""

    @staticmethod
    def forward(ctx, u, width):  # noqa: D102
        ctx.save_for_backward(u)
        ctx.width = width
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        (u,) = ctx.saved_tensors
        width = ctx.width
        return grad * torch.clamp(1.0 - u.abs() / width, min=0.0) / width, None


def _snap(d: torch.Tensor) -> torch.Tensor:
    """Nearest signed powers of two (log domain) of a float tensor; an exact 0 becomes +2^-30."""
    magnitude = torch.exp2(torch.round(torch.log2(d.abs().clamp_min(2.0 ** -30))))
    return torch.where(d < 0, -magnitude, magnitude)


def _surrogate_response(x: torch.Tensor, thr: torch.Tensor, rst: torch.Tensor, d: torch.Tensor,
                        width: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(f̂(x), spikes(x))`` with the pseudo-derivative in the backward pass."""
    v = x
    out = torch.zeros_like(x)
    spikes = torch.zeros_like(x)
    for t in range(thr.shape[0]):
        z = _Heaviside.apply(v - thr[t], width)
        out = out + d[t] * z
        v = v - rst[t] * z
        spikes = spikes + z
    return out, spikes


@dataclass(frozen=True)
class FitResult:
    """A fitted table and its quality: MSE on the whole interval, inside and outside ``REPORT_REGION`` (uniform
    grid of 100 001 points), the final weighted training loss and the settings used."""

    table: FsTable
    mse: float
    mse_inside: float
    mse_outside: float
    loss: float
    settings: dict


def _mse_split(table: FsTable, interval: tuple[float, float], points: int = 100_001) -> tuple[float, float, float]:
    f = ACTIVATIONS[table.activation]
    x = torch.linspace(interval[0], interval[1], points, dtype=torch.float64)
    out, _ = fs_response(x, table.threshold, table.reset, table.weight)
    err = (out - f(x)) ** 2
    inside = (x >= REPORT_REGION[0]) & (x <= REPORT_REGION[1])
    outside_err = err[~inside]
    return (float(err.mean()), float(err[inside].mean()),
            float(outside_err.mean()) if outside_err.numel() else 0.0)


def fit_table(activation: str, phases: int | None = None, interval: Sequence[float] | None = None, *,
              iterations: int = 3000, restarts: int = 4, points: int = 20_001, lr: float | None = None,
              pseudo_width: float = 1.0, emphasis: tuple[float, float] | None | str = "default",
              emphasis_weight: float | None = None, init_offset: float | None = None, noise: float = 0.05,
              shift_only: bool = False, shift_iterations: int | None = None, seed: int = 0,
              init: FsTable | None = None, spike_penalty: float | None = None,
              progress: bool = False) -> FitResult:
    """Fit FS tables (T, h, d) of ``activation`` with K = ``phases`` steps on ``interval`` (defaults:
    :data:`FIT_SPECS`).

    Procedure (our own, after the paper's description "backpropagation through time with a triangle-shaped
    pseudo-derivative"): ``points`` uniform inputs on the interval; the loss is the mean squared error against
    the activation, weighted by ``emphasis_weight`` inside ``emphasis`` (paper: SiLU emphasises [−2, 2]); the K
    steps are unrolled with ``z = (v − T(t) ≥ 0)`` whose derivative is replaced by the triangle
    ``max(0, 1 − |v − T(t)|/γ)/γ`` (γ = ``pseudo_width``); Adam with learning rate ``lr`` and a cosine schedule
    over ``iterations`` steps. Every restart starts from the binary code of a ramp (the ReLU table shifted to
    ``x0 = init_offset``: ``T = x0 + R·2^-t``, ``h = R·2^-t``, ``d = s·R·2^-t`` with ``R = hi − x0`` and ``s`` the
    activation's secant slope on [x0, hi]), restart 0 exactly, the others with Gaussian noise of ``noise``·R/4
    on every entry (seeded by ``seed``); the table with the lowest loss wins.

    ``spike_penalty`` λ adds ``λ·spikes(x)`` to every point's squared error (same region weights), trading
    accuracy for fewer spikes.
    ``init``: start from this table instead of the ramp (``iterations=0`` then skips the free training).
    ``shift_only``: in every restart d is trained through its nearest signed power of two (log domain;
    straight-through gradient), then fixed to it, and T, h are trained again for ``shift_iterations`` (default
    ``iterations // 2``, at least 1); the restart with the lowest final loss wins.
    """
    activation = _check_activation(activation)
    if activation == "relu":
        raise SnnCosimError("ReLU needs no fit: use relu_table(K, alpha) (the exact binary code)")
    spec = FIT_SPECS.get(activation, FitSpec(activation, 16, (-8.0, 8.0)))
    phases = spec.phases if phases is None else _check_phases(phases)
    lo, hi = (float(v) for v in (spec.interval if interval is None else interval))
    if not lo < hi:
        raise SnnCosimError(f"the fit interval must have lo < hi, got [{lo}, {hi}]")
    if emphasis == "default":
        emphasis = spec.emphasis
        emphasis_weight = spec.emphasis_weight if emphasis_weight is None else emphasis_weight
    emphasis_weight = 1.0 if emphasis_weight is None else float(emphasis_weight)
    x0 = spec.init_offset if init_offset is None else float(init_offset)
    lr = spec.lr if lr is None else float(lr)
    spike_penalty = spec.spike_penalty if spike_penalty is None else float(spike_penalty)
    x0 = min(max(x0, lo), hi - (hi - lo) * 1e-3)
    for name, value in (("iterations", iterations), ("restarts", restarts), ("points", points)):
        minimum = 0 if (name == "iterations" and init is not None) else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise SnnCosimError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if init is not None and (init.activation != activation or init.phases != phases):
        raise SnnCosimError(f"init is a {init.activation} table with K={init.phases}, not {activation} with K={phases}")
    f = ACTIVATIONS[activation]
    x = torch.linspace(lo, hi, points, dtype=torch.float64)
    y = f(x)
    weight = torch.ones_like(x)
    if emphasis is not None:
        weight = torch.where((x >= emphasis[0]) & (x <= emphasis[1]), emphasis_weight, 1.0).to(torch.float64)
    span = hi - x0
    slope = float((f(torch.tensor(hi, dtype=torch.float64)) - f(torch.tensor(x0, dtype=torch.float64))) / span)
    powers = torch.pow(2.0, -torch.arange(1, phases + 1, dtype=torch.float64))
    base = (x0 + span * powers, span * powers, slope * span * powers)
    if init is not None:
        base = tuple(torch.tensor(values, dtype=torch.float64) for values in (init.threshold, init.reset, init.weight))
    generator = torch.Generator().manual_seed(int(seed))

    def snapped(d: torch.Tensor) -> torch.Tensor:
        """Shift-only training: the forward pass uses the nearest signed powers of two, the gradient reaches d
        unchanged (straight-through)."""
        if not shift_only:
            return d
        return d + (_snap(d.detach()) - d).detach()

    def loss_of(params: list[torch.Tensor], fixed_d: torch.Tensor | None, surrogate: bool) -> torch.Tensor:
        d = fixed_d if fixed_d is not None else snapped(params[2])
        if surrogate:
            out, spikes = _surrogate_response(x, params[0], params[1], d, pseudo_width)
        else:
            out, spikes = fs_response(x, params[0], params[1], d)
        return (weight * ((out - y) ** 2 + spike_penalty * spikes)).mean()

    def train(params: list[torch.Tensor], fixed_d: torch.Tensor | None, steps: int) -> float:
        if steps > 0:
            optimiser = torch.optim.Adam(params, lr=lr)
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
            for _ in range(steps):
                optimiser.zero_grad()
                loss_of(params, fixed_d, True).backward()
                optimiser.step()
                schedule.step()
        with torch.no_grad():
            return float(loss_of(params, fixed_d, False))

    best: tuple[float, list[torch.Tensor]] | None = None
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: one thread is as fast and leaves the machine to others
    try:
        for restart in range(restarts):
            params = []
            for start in base:
                jitter = 0.0 if restart == 0 else noise * span / 4 * torch.randn(phases, generator=generator,
                                                                                  dtype=torch.float64)
                params.append((start + jitter).clone().requires_grad_(True))
            loss = train(params, None, iterations)
            if shift_only:  # fix d to its powers of two, train T and h again
                fixed = _snap(params[2].detach())
                params = [params[0].detach().clone().requires_grad_(True),
                          params[1].detach().clone().requires_grad_(True)]
                loss = train(params, fixed, shift_iterations or max(1, iterations // 2))
                params = params + [fixed]
            if progress:
                print(f"  {activation} K={phases} restart {restart}: loss {loss:.6f}", flush=True)
            if math.isfinite(loss) and (best is None or loss < best[0]):
                best = (loss, [p.detach().clone() for p in params])
        if best is None:
            raise SnnCosimError(f"the {activation} fit diverged in every restart; lower lr")
        loss, (thr, rst, d) = best
    finally:
        torch.set_num_threads(previous_threads)
    settings = {"interval": [lo, hi], "iterations": iterations, "restarts": restarts, "points": points, "lr": lr,
                "pseudo_width": pseudo_width, "emphasis": None if emphasis is None else list(emphasis),
                "emphasis_weight": emphasis_weight, "init_offset": x0, "noise": noise, "seed": int(seed),
                "shift_only": bool(shift_only), "init": "table" if init is not None else "ramp",
                "spike_penalty": float(spike_penalty)}
    if shift_only:
        settings["shift_iterations"] = shift_iterations or max(1, iterations // 2)
    table = FsTable(activation, thr.numpy(), rst.numpy(), d.numpy())
    mse, inside, outside = _mse_split(table, (lo, hi))
    meta = {**settings, "mse": mse, "mse_inside": inside, "mse_outside": outside, "report_region": list(REPORT_REGION)}
    table = FsTable(activation, table.threshold, table.reset, table.weight, meta)
    return FitResult(table, mse, inside, outside, loss, settings)


# ----------------------------------------------------------------------------------------------- shipped tables
@lru_cache(maxsize=4)
def _load(path: str) -> tuple[FsTable, ...]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SnnCosimError(f"{path}: cannot read the FS tables ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(data, dict) or data.get("version") != TABLES_VERSION:
        raise SnnCosimError(f"{path}: not an FS table file of version {TABLES_VERSION}")
    try:
        return tuple(FsTable.from_dict(entry) for entry in data["tables"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SnnCosimError(f"{path}: malformed FS table entry ({exc.__class__.__name__}: {exc})") from None


def load_tables(path: str | Path | None = None) -> list[FsTable]:
    """The fitted tables shipped in ``golden/conversion/fs_tables.json`` (or ``path``), made by
    ``scripts/fit_fs_tables.py``."""
    return list(_load(str(TABLES_PATH if path is None else path)))


def save_tables(tables: Sequence[FsTable], path: str | Path | None = None) -> Path:
    """Write tables in the :func:`load_tables` format."""
    path = Path(TABLES_PATH if path is None else path)
    data = {"version": TABLES_VERSION,
            "about": "FS-neuron tables (Stoeckl & Maass 2021) fitted by scripts/fit_fs_tables.py; activation "
                     "units; T = threshold, h = reset, d = weight, t = 1..K",
            "tables": [t.to_dict() for t in tables]}
    path.write_text(json.dumps(data, indent=1) + "\n")
    _load.cache_clear()
    return path


def table_for(activation: str, phases: int | None = None, *, alpha: float = 1.0, shift_only: bool = False) -> FsTable:
    """The FS table of ``activation``: ReLU's analytic table for any K (``phases`` required, range ``alpha``),
    SiLU and sigmoid from the shipped fits (default K: 16 and 12). ``shift_only`` picks the fit whose d entries
    are signed powers of two. An activation without a table is an :class:`UnsupportedLayerError`."""
    activation = _check_activation(activation)
    if activation == "relu":
        if phases is None:
            raise SnnCosimError("the ReLU table needs phases=K")
        return relu_table(phases, alpha)
    phases = FIT_SPECS[activation].phases if phases is None else _check_phases(phases)
    for table in load_tables():
        if table.activation == activation and table.phases == phases and table.shift_only == bool(shift_only):
            return table
    raise UnsupportedLayerError(
        f"no shipped {activation} table with K={phases}{' (shift-only)' if shift_only else ''}; fit one with "
        f"golden.conversion.fs_tables.fit_table({activation!r}, {phases}{', shift_only=True' if shift_only else ''})")
