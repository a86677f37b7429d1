"""The configuration of Lee 2016 direct training and its layer grammar (torch-free, so that the command line can
show defaults and check options without importing the trainer). :mod:`golden.training.lee_trainer` trains with it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from golden.core.errors import SnnCosimError

__all__ = ["LeeConfig", "LayerSpec", "parse_layers"]


@dataclass(frozen=True)
class LeeConfig:
    """Everything that determines a directly trained network (its hash names the cache file).

    ``hidden``: hidden layers, ints for dense layers, strings ``"<C>c<K>[s<S>][p<P>]"`` for convolutions (which
    must come before the dense layers). ``steps``: time steps per training sample; ``test_steps`` (default
    ``steps``) for evaluation. ``kappa_hidden`` applies to dense hidden layers (``kappa_hidden2`` to the second and
    later dense hidden layers: Lee uses no WTA in HL2), ``kappa_output`` to the output layer; 0 switches WTA off.
    ``alpha``: Eq. 10 threshold factor per layer (one value for all, or one per layer). ``theta_min``: the lower
    bound of a threshold in units of ``sqrt(3/M)`` (the paper leaves its value open; 1 = Eq. 10's α > 1).
    ``saturation_aware``: in the output error's derivative of ``max_j count_j`` (Eq. 16) tied maxima share it and a
    maximum at the one-spike-per-step ceiling counts as constant (False: all of it to the first maximum, as before).
    """

    hidden: tuple = (100,)
    steps: int = 32
    test_steps: int | None = None
    epochs: int = 10
    batch_size: int = 32
    lr: float = 0.001
    lr_threshold: float | None = None  # None: = lr (Table 1, ADAM)
    lr_decay: float = math.exp(-1.0 / 35.0)
    kappa_hidden: float = -0.4
    kappa_hidden2: float = 0.0
    kappa_output: float = -1.0
    sigma: float = 0.5
    alpha: float | tuple = 2.0  # Eq. 10 (paper: 3-10); 2 keeps more hidden spikes in 32 steps (docs/training.md)
    beta: float = 10.0
    lam: float = 0.002
    rho: float = 0.0  # Sec. 2.3.2 off by default: with the floor it raised hidden thresholds 2-5x (docs/training.md)
    theta_min: float = 1.0
    leak_shift: int = 5
    max_rate: float = 1.0
    weight_bits: int = 8
    membrane_bits: int = 24
    error_normalisation: bool = True
    saturation_aware: bool = True  # Eq. 16's max: shared by tied maxima, constant at the ceiling (docs/training.md)
    seed: int = 0
    n_classes: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(self.hidden))
        if isinstance(self.alpha, (list, tuple)):
            object.__setattr__(self, "alpha", tuple(float(a) for a in self.alpha))

    @property
    def eval_steps(self) -> int:
        return self.steps if self.test_steps is None else self.test_steps

    def validate(self) -> "LeeConfig":
        def positive_int(name):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise SnnCosimError(f"{name.replace('_', ' ')} must be a positive integer, got {value!r}")

        for name in ("steps", "epochs", "batch_size", "n_classes"):
            positive_int(name)
        if self.test_steps is not None:
            positive_int("test_steps")
        for name in ("kappa_hidden", "kappa_hidden2", "kappa_output"):
            value = getattr(self, name)
            if not -1.0 <= value <= 0.0:
                raise SnnCosimError(f"{name.replace('_', ' ')} must lie in [-1, 0] (Lee 2016: -1 <= κ <= 0), "
                                    f"got {value}")
        if not 0.0 < self.sigma <= 1.0:
            raise SnnCosimError(f"sigma must lie in (0, 1], got {self.sigma}")
        if self.lr <= 0 or (self.lr_threshold is not None and self.lr_threshold < 0):
            raise SnnCosimError(f"learning rates must be positive, got lr={self.lr}, lr_threshold={self.lr_threshold}")
        if min(self.alphas(1 + len(self.hidden))) <= 0:
            raise SnnCosimError(f"alpha must be positive, got {self.alpha}")
        if self.beta < 0 or self.lam < 0 or self.rho < 0 or self.theta_min < 0:
            raise SnnCosimError("beta, lambda, rho and theta_min must not be negative")
        if not 2 <= self.weight_bits <= 16:
            raise SnnCosimError(f"weight bits must be in 2..16, got {self.weight_bits}")
        if not 8 <= self.membrane_bits <= 48:
            raise SnnCosimError(f"membrane bits must be in 8..48, got {self.membrane_bits}")
        if not 1 <= self.leak_shift < self.membrane_bits:
            raise SnnCosimError(f"leak shift must be in 1..{self.membrane_bits - 1}, got {self.leak_shift}")
        if not 0.0 < self.max_rate <= 1.0:
            raise SnnCosimError(f"max rate is a spike probability per step in (0, 1], got {self.max_rate}")
        parse_layers(self.hidden, (1, 28, 28))  # syntax check of the layer strings
        return self

    def alphas(self, n_layers: int) -> tuple[float, ...]:
        if isinstance(self.alpha, tuple):
            if len(self.alpha) != n_layers:
                raise SnnCosimError(f"alpha has {len(self.alpha)} values for {n_layers} layers")
            return self.alpha
        return (float(self.alpha),) * n_layers

    def key(self) -> str:
        text = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(f"snncosim-lee-v1:{text}".encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------ architecture
@dataclass(frozen=True)
class LayerSpec:
    kind: str  # "dense" or "conv2d"
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    kernel: int = 0
    stride: int = 1
    padding: int = 0
    kappa: float = 0.0

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def channels(self) -> int:
        """Neurons sharing parameters: n_out for dense, output channels for conv."""
        return self.out_shape[0]

    @property
    def fan_in(self) -> int:
        """M of Eq. 10: inputs per neuron."""
        if self.kind == "dense":
            return self.n_in
        return self.in_shape[0] * self.kernel * self.kernel

    @property
    def weight_shape(self) -> tuple[int, ...]:
        if self.kind == "dense":
            return (self.n_out, self.n_in)
        return (self.out_shape[0], self.in_shape[0], self.kernel, self.kernel)


_CONV = re.compile(r"^(\d+)c(\d+)(?:s(\d+))?(?:p(\d+))?$")


def parse_layers(hidden: Sequence, input_shape: tuple[int, ...], n_classes: int = 10, *,
                 kappas: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> list[LayerSpec]:
    """Layer specs of ``input → hidden… → n_classes``; ``kappas`` = (first dense hidden, later dense hidden,
    output). Convolutions need a ``(c, h, w)`` input and come before every dense layer."""
    specs: list[LayerSpec] = []
    shape = tuple(input_shape)
    dense_seen = 0
    hidden = [int(h) if str(h).strip().isdigit() else h for h in hidden]
    for item in list(hidden) + [int(n_classes)]:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if item < 1:
                raise SnnCosimError(f"a dense layer needs at least one neuron, got {item}")
            is_output = len(specs) == len(hidden)
            kappa = kappas[2] if is_output else (kappas[0] if dense_seen == 0 else kappas[1])
            specs.append(LayerSpec("dense", shape, (int(item),), kappa=kappa))
            dense_seen += 1
            shape = (int(item),)
            continue
        text = str(item).strip().lower()
        match = _CONV.match(text)
        if not match:
            raise SnnCosimError(f"layer {item!r}: expected a dense size like 100 or a convolution like 8c5s2 "
                                f"(channels c kernel [s stride] [p padding])")
        if dense_seen:
            raise SnnCosimError(f"layer {item!r}: convolutions must come before the dense layers")
        if len(shape) != 3:
            raise SnnCosimError(f"layer {item!r}: a convolution needs an image input (c, h, w), got {shape}")
        channels, kernel = int(match.group(1)), int(match.group(2))
        stride, padding = int(match.group(3) or 1), int(match.group(4) or 0)
        if channels < 1 or kernel < 1 or stride < 1:
            raise SnnCosimError(f"layer {item!r}: channels, kernel and stride must be positive")
        h = (shape[1] + 2 * padding - kernel) // stride + 1
        w = (shape[2] + 2 * padding - kernel) // stride + 1
        if h < 1 or w < 1:
            raise SnnCosimError(f"layer {item!r}: a {kernel}x{kernel} kernel does not fit the {shape[1]}x{shape[2]} "
                                f"input")
        out = (channels, h, w)
        specs.append(LayerSpec("conv2d", shape, out, kernel, stride, padding))
        shape = out
    return specs
