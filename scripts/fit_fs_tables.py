"""Fit the FS-neuron tables (Stöckl & Maass 2021) shipped in golden/conversion/fs_tables.json and print their quality.

    python scripts/fit_fs_tables.py                 # full-quality fits, writes golden/conversion/fs_tables.json
    python scripts/fit_fs_tables.py --quick --no-save

Fits SiLU (K = 16 on [−8, 12], loss weighted ×10 on [−2, 2]) and sigmoid (K = 12 on [−10, 10]) with
golden.conversion.fs_tables.fit_table (gradient descent through the K steps with a triangle pseudo-derivative), each once with
free d and once shift-only (every d a signed power of two: the receiving layer shifts instead of multiplying),
the latter starting from the free fit (noise 0.02, lr 0.01) and training d through its nearest power of two
(straight-through), then T and h with d fixed.
Prints the MSE inside and outside [−2, 2] next to the paper's figures (SiLU K=16: 0.0023 inside, 0.0064
outside), the mean spikes under the paper's Fig. 7 input models, and the error after quantising each table to
integers (membrane scale 2^8). Also prints the ReLU checks of notes/004 §6 (exactness, error bound, spikes).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from golden.conversion.fs_tables import (FIT_SPECS, REPORT_REGION, TABLES_PATH, fit_table, quantize_table,
                                         relu_integer_table, relu_table, save_tables, table_mse)

PAPER = {"silu": "paper (K=16): 0.0023 inside [-2,2], 0.0064 outside", "sigmoid": "paper (K=12): no MSE given"}
FIG7 = {"silu": (-0.112, 1.99), "relu": (-0.3697, 2.19)}  # Gaussian input models (mean, variance) of Fig. 7


def mean_spikes(table, mean: float, var: float, n: int = 200_000, seed: int = 0) -> float:
    x = np.random.default_rng(seed).normal(mean, np.sqrt(var), n)
    _, spikes = table.response(x)
    return float(spikes.mean())


def quantised_mse(table, lo: float, hi: float, scale: int = 256) -> float:
    """MSE of the integer table (T, h ×scale; d ×scale, or shift-only) on integer membranes of the grid."""
    q = quantize_table(table, scale, scale, shift_only=table.shift_only)
    x = np.linspace(lo, hi, 100_001)
    v = np.rint(x * scale).astype(np.int64)
    out, _, _, _ = q.response(v)
    import torch

    from golden.conversion.fs_tables import ACTIVATIONS
    y = ACTIVATIONS[table.activation](torch.as_tensor(x)).numpy()
    return float(np.mean((out / scale - y) ** 2))


def relu_checks() -> None:
    print("ReLU (analytic table)")
    for k in (8, 10):
        q = relu_integer_table(k)
        x = np.arange(-20, 2 ** k)
        out, spikes, _, _ = q.response(x)
        exact = bool(np.array_equal(out, np.maximum(x, 0)))
        popcount = bool(np.array_equal(spikes, [bin(max(int(v), 0)).count("1") for v in x]))
        print(f"  K={k:2d}: integer f(x) == ReLU(x) for x in [-20, {2 ** k - 1}]: {exact}; spikes == popcount: "
              f"{popcount}")
    for k, alpha in ((10, 25.0), (6, 10.0)):
        t = relu_table(k, alpha)
        x = np.linspace(-30, alpha - 1e-9, 200_001)
        err = np.abs(t.response(x)[0] - np.maximum(x, 0)).max()
        mean, var = FIG7["relu"]
        print(f"  K={k:2d}, alpha={alpha:g}: max |f - ReLU| on [-30, alpha) = {err:.5f} (bound alpha*2^-K = "
              f"{alpha * 2.0 ** -k:.5f}); mean spikes under N({mean}, {var}) = {mean_spikes(t, mean, var):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=6000)
    parser.add_argument("--restarts", type=int, default=4)
    parser.add_argument("--points", type=int, default=20_001)
    parser.add_argument("--quick", action="store_true", help="600 iterations, 1 restart, 2001 points")
    parser.add_argument("--no-save", action="store_true", help=f"do not write {TABLES_PATH}")
    parser.add_argument("--out", default=None, help=f"output file (default {TABLES_PATH})")
    args = parser.parse_args()
    if args.quick:
        args.iterations, args.restarts, args.points = 600, 1, 2001
    relu_checks()
    tables = []
    for activation in ("silu", "sigmoid"):
        spec = FIT_SPECS[activation]
        lo, hi = spec.interval
        start = time.time()
        free = fit_table(activation, iterations=args.iterations, restarts=args.restarts, points=args.points,
                         progress=True)
        shift = fit_table(activation, init=free.table, iterations=args.iterations // 2, restarts=args.restarts,
                          points=args.points, shift_only=True, lr=0.01, noise=0.02, progress=True)
        print(f"{activation} K={spec.phases} on [{lo:g}, {hi:g}] ({time.time() - start:.0f} s); {PAPER[activation]}")
        for name, result in (("free d", free), ("shift-only d", shift)):
            t = result.table
            line = (f"  {name:12s}: MSE inside {list(REPORT_REGION)} {result.mse_inside:.5f}, outside "
                    f"{result.mse_outside:.5f}, whole interval {result.mse:.6f}; integer (x256) "
                    f"{quantised_mse(t, lo, hi):.6f}")
            if activation in FIG7:
                mean, var = FIG7[activation]
                line += f"; mean spikes under N({mean}, {var}) = {mean_spikes(t, mean, var):.3f}"
            print(line)
            print(f"    T = {np.round(t.threshold, 4).tolist()}\n    h = {np.round(t.reset, 4).tolist()}\n"
                  f"    d = {np.round(t.weight, 4).tolist()}")
            tables.append(t)
    if not args.no_save:
        path = save_tables(tables, args.out)
        print(f"wrote {path}")
    # the shipped tables as loaded (what table_for returns)
    for t in tables:
        lo, hi = FIT_SPECS[t.activation].interval
        assert abs(table_mse(t, lo, hi) - t.meta["mse"]) < 1e-12


if __name__ == "__main__":
    main()
