"""Kim 2018's early decision (Algorithm 1, Sec. 5.3) on the output layer's membrane trajectory.

Input: the trajectory ``V^L(t)`` of the output layer, ``[N, T, n_out]`` (``simulator.output_trajectory(...)``: the
'acc' membrane of a weighted-spike network; for a spiking output layer the cumulative spike counts), a time range
``[T1, T2]`` and the stable-decision threshold θ. Per image, vectorised over images, for t = T1..T2:

    D(t)      = argmax_i V_i(t)                       (ties to the lowest index; D(T1 − 1) = none)
    δ(t)      = top1(V(t)) − top2(V(t))               (0 on a tie)
    δ_EMA(t)  = (δ(t) + δ_EMA(t − 1)) / 2             (δ_EMA(T1 − 1) = 0)
    if D(t) = D(t − 1):  count += 1;  stop with (D(t), t) when count · δ_EMA(t) ≥ θ
    else:                count = 0

The test ``count ≥ θ / δ_EMA`` is written as ``count · δ_EMA ≥ θ`` (the same for δ_EMA > 0; never true while
δ_EMA = 0, where the paper's quotient is infinite). An image that has not stopped by T2 is decided at T2 with
D(T2) (``decided`` is False for it).

**Ambiguity resolved** (notes/003 §4: "unclear whether δ uses the raw, growing V^L or the per-period average").
``values="average"`` (the default) uses the per-period average of the accumulator, which is what the paper's text
calls the "difference of top-2 activations" (Eq. 16: ``V^L(nK) ≈ n·a^L``) and what Figs. 4 and 7 plot:

    A(t) = V(t) / n(t),   n(t) = ceil((t − S·K) / K)  integrated periods, a partial period counting as one
                          (MSB first, a partial period already carries the value's upper bits); A(t) = 0 while
                          t ≤ S·K (nothing integrated yet)

so that θ is in activation units and has the same meaning at every t (Kim's θ = 0.9 for Net4). ``values="raw"``
uses ``V(t)`` itself, Algorithm 1 read literally: δ then grows with t and decisions speed up over time.
``scale`` divides the trajectory first: ``2^K · s_L`` turns the integer model's membrane (units of 2^-K of the
integer output layer, whose weights are the float ones times its integer scale s_L) into activation units; the
float model needs ``scale = 1``. D(t), and hence the decision, does not depend on the mode or the scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from golden.core.errors import SnnCosimError

__all__ = ["EarlyDecision", "early_decision", "period_average", "spikes_until"]

Values = Literal["average", "raw"]


@dataclass(frozen=True)
class EarlyDecision:
    """Per image: ``step`` (1-based decision step, ``int64 [N]``), ``prediction`` (the class D at that step),
    ``decided`` (False where Algorithm 1 did not stop by T2 and the decision is D(T2) at T2)."""

    step: np.ndarray
    prediction: np.ndarray
    decided: np.ndarray

    def accuracy(self, labels) -> float:
        labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels).reshape(-1)
        if labels.shape != self.prediction.shape:
            raise SnnCosimError(f"{labels.shape[0]} labels for {self.prediction.shape[0]} images")
        return float((self.prediction == labels).mean())

    @property
    def mean_step(self) -> float:
        return float(self.step.mean())


def _as_trajectory(trajectory) -> np.ndarray:
    if isinstance(trajectory, torch.Tensor):
        trajectory = trajectory.detach().cpu().numpy()
    trajectory = np.asarray(trajectory)
    if trajectory.ndim != 3 or trajectory.shape[1] < 1:
        raise SnnCosimError(f"the output trajectory must have shape [N, T, n_out], got {trajectory.shape}")
    if not (np.issubdtype(trajectory.dtype, np.integer) or np.issubdtype(trajectory.dtype, np.floating)):
        raise SnnCosimError(f"the output trajectory must be numbers, got dtype {trajectory.dtype}")
    return trajectory.astype(np.float64, copy=False)


def _check_int(name: str, value, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise SnnCosimError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def period_average(trajectory, phases: int, skip_periods: int = 0) -> np.ndarray:
    """``float64 [N, T, n]``: ``V(t) / ceil((t − S·K) / K)`` (the accumulator per integrated period; a partial
    period counts as one), 0 for ``t ≤ S·K``."""
    values = _as_trajectory(trajectory)
    phases = _check_int("phases K", phases, 1)
    skip = _check_int("skip_periods", skip_periods, 0) * phases
    t = np.arange(1, values.shape[1] + 1)
    periods = np.maximum(0, -(-(t - skip) // phases))  # ceil for positive, 0 while t ≤ S·K
    divisor = np.where(periods > 0, periods, 1).astype(np.float64)
    return np.where((periods > 0)[None, :, None], values / divisor[None, :, None], 0.0)


def early_decision(trajectory, theta: float, *, t1: int | None = None, t2: int | None = None,
                   values: Values = "average", phases: int | None = None, skip_periods: int = 0,
                   scale: float = 1.0) -> EarlyDecision:
    """Kim 2018 Algorithm 1 on ``trajectory [N, T, n_out]`` (step t is ``trajectory[:, t-1]``).

    ``theta`` > 0: the stable-decision threshold. ``t1`` defaults to ``S·K + 1`` (the first integrated step; 1
    without phases), ``t2`` to T. ``values``: "average" (needs ``phases``; see the module note) or "raw".
    ``scale`` divides the trajectory (e.g. ``2**K * s_L`` for the integer model's membrane)."""
    data = _as_trajectory(trajectory)
    n_images, steps, n_out = data.shape
    if n_out < 2:
        raise SnnCosimError("early decision compares the top two outputs; the output layer needs >= 2 neurons")
    if isinstance(theta, bool) or not isinstance(theta, (int, float, np.integer, np.floating)) or not theta > 0 \
            or not np.isfinite(theta):
        raise SnnCosimError(f"theta (stable decision threshold) must be a positive number, got {theta!r}")
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)) or not scale > 0:
        raise SnnCosimError(f"scale must be a positive number, got {scale!r}")
    if values not in ("average", "raw"):
        raise SnnCosimError(f"values must be 'average' or 'raw', got {values!r}")
    if phases is not None:
        phases = _check_int("phases K", phases, 1)
    skip_periods = _check_int("skip_periods", skip_periods, 0)
    if values == "average":
        if phases is None:
            raise SnnCosimError("values='average' needs phases K (the period length); pass phases= or values='raw'")
        data = period_average(data, phases, skip_periods)
    data = data / float(scale)
    first = (skip_periods * phases + 1) if phases is not None else 1
    t1 = first if t1 is None else _check_int("t1", t1, 1)
    t2 = steps if t2 is None else _check_int("t2", t2, 1)
    if not t1 <= t2 <= steps:
        raise SnnCosimError(f"need 1 <= t1 <= t2 <= T = {steps}, got t1={t1}, t2={t2}")

    prev = np.full(n_images, -1, dtype=np.int64)  # D(T1 − 1) = none
    ema = np.zeros(n_images)
    count = np.zeros(n_images, dtype=np.int64)
    done = np.zeros(n_images, dtype=bool)
    step = np.full(n_images, t2, dtype=np.int64)
    prediction = np.argmax(data[:, t2 - 1], axis=-1).astype(np.int64)  # fallback: D(T2)
    for t in range(t1, t2 + 1):
        v = data[:, t - 1]
        decision = np.argmax(v, axis=-1).astype(np.int64)  # first maximum: ties to the lowest index
        top2 = np.sort(v, axis=-1)[:, -2:]
        delta = top2[:, 1] - top2[:, 0]
        ema = (delta + ema) / 2.0
        same = decision == prev
        count = np.where(same, count + 1, 0)
        stop = same & (count * ema >= theta) & ~done
        step[stop] = t
        prediction[stop] = decision[stop]
        done |= stop
        prev = decision
        if done.all():
            break
    return EarlyDecision(step=step, prediction=prediction, decided=done)


def spikes_until(step_spikes, steps) -> np.ndarray:
    """Spikes of each image up to and including its decision step: ``step_spikes`` ``[N, T]`` or ``[N, T, L]``
    (e.g. ``trace.counter("spikes")`` of a golden, float or RTL trace), ``steps`` ``int [N]`` (1-based) → ``[N]``
    (or ``[N, L]``)."""
    counts = np.asarray(step_spikes)
    steps = np.asarray(steps, dtype=np.int64).reshape(-1)
    if counts.ndim not in (2, 3) or counts.shape[0] != steps.shape[0]:
        raise SnnCosimError(f"step_spikes must be [N, T] or [N, T, L] with N = {steps.shape[0]}, got {counts.shape}")
    if steps.size and (steps.min() < 1 or steps.max() > counts.shape[1]):
        raise SnnCosimError(f"decision steps must lie in 1..{counts.shape[1]}")
    mask = np.arange(1, counts.shape[1] + 1)[None, :] <= steps[:, None]
    if counts.ndim == 3:
        mask = mask[..., None]
    return (counts * mask).sum(axis=1)
