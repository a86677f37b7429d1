"""Input encoders (SPEC §4): the golden model makes the input spikes once; the RTL receives the same spikes.

* :func:`rate_encode` — Bernoulli ("Poisson") rate coding: at every step input ``i`` of image ``b`` spikes with
  probability ``p = min(1, max_rate · code / (2^input_bits − 1))``. The random numbers come from a seeded **CPU**
  ``torch.Generator``, so the spikes are the same whatever device simulates them. Every image has its own
  generator, seeded from ``(seed, image index)``: the spikes of an image depend only on the seed, its index
  (``first_index`` + position in ``codes``), its codes and the step, never on how a data set is cut into chunks
  or batches, and the first ``T'`` steps of a ``T``-step encoding are the ``T'``-step encoding. The cost is
  torch's Mersenne Twister (two 32-bit draws per float64, ~0.4 ms per 784-input image at T = 100): no faster way
  gives the same spikes from Python (numpy's MT19937 on the same state, verified equal, is no faster).
  ``generator="pcg64x16"`` is a documented opt-in with other spikes (16-bit draws, ~4× faster).
* :func:`direct_encode` — the "direct" analog first layer (Rueckauer et al.): the integer code itself enters the
  first layer at every step (its products count as MACs).
* :func:`fs_encode` — FS networks (Stöckl & Maass 2021): each code sent once, MSB first, during the first K
  steps (window 1), silent afterwards; :func:`fs_pixel_codes` makes K-bit codes of 8-bit pixels.
* :func:`weighted_encode` — Kim 2018's weighted spikes: a K-bit code is sent bit-serially, MSB first, one bit per
  step, and the pattern repeats every period of K steps (no randomness). :func:`pixel_codes_to_phases` keeps the
  upper K bits of 8-bit pixels (Kim: "only the upper 4 bits of input pixel values are used" for K = 4).

All return time-major tensors ``[T, B, n_inputs]`` (codes ``[B, ...]`` are flattened per image).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from golden.core.errors import SnnCosimError

_MASK64 = (1 << 64) - 1


def _as_codes(codes, input_bits: int) -> torch.Tensor:
    """Integer codes ``[B, ...]`` → CPU int64 ``[B, n]``, range-checked."""
    if not isinstance(input_bits, int) or not 1 <= input_bits <= 16:
        raise SnnCosimError(f"input_bits must be an integer in 1..16, got {input_bits!r}")
    if isinstance(codes, np.ndarray):
        codes = torch.from_numpy(np.ascontiguousarray(codes))
    elif not isinstance(codes, torch.Tensor):
        codes = torch.as_tensor(codes)
    if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dtype == torch.bool:
        raise SnnCosimError(f"input codes must be integers in [0, {2 ** input_bits - 1}], got dtype {codes.dtype}")
    if codes.dim() < 1:
        raise SnnCosimError("input codes must have a batch dimension: shape [B, ...]")
    codes = codes.detach().to("cpu", torch.int64).reshape(codes.shape[0], -1)
    hi = 2 ** input_bits - 1
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) > hi):
        raise SnnCosimError(
            f"input codes span [{int(codes.min())}, {int(codes.max())}] but input_bits={input_bits} allows [0, {hi}]")
    return codes


def _check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise SnnCosimError(f"steps must be a positive integer, got {steps!r}")
    return int(steps)


def image_seed(seed: int, index: int) -> int:
    """64-bit seed of image ``index`` under run seed ``seed`` (splitmix64 of the pair; distinct pairs do not
    collide the way ``seed + index`` would)."""
    z = (int(seed) * 0x9E3779B97F4A7C15 + int(index) + 0x632BE59BD9B4E5F5) & _MASK64
    for _ in range(2):
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB & _MASK64
        z ^= z >> 31
    return z


def spike_probability(codes, *, max_rate: float = 1.0, input_bits: int = 8) -> torch.Tensor:
    """``float64 [B, n]`` per-step spike probability of each input."""
    codes = _as_codes(codes, input_bits)
    _check_max_rate(max_rate)
    return (codes.to(torch.float64) * (float(max_rate) / (2 ** input_bits - 1))).clamp_(max=1.0)


def _check_max_rate(max_rate) -> None:
    if isinstance(max_rate, bool) or not isinstance(max_rate, (int, float, np.floating, np.integer)) \
            or not 0.0 < float(max_rate) <= 1.0:
        raise SnnCosimError(f"max_rate is a spike probability per step and must lie in (0, 1], got {max_rate!r}")


RATE_GENERATORS = ("mt19937", "pcg64x16")


def rate_encode(codes, steps: int, *, max_rate: float = 1.0, seed: int = 0, input_bits: int = 8,
                first_index: int = 0, device=None, generator: str = "mt19937") -> torch.Tensor:
    """Bernoulli rate coding of integer codes ``[B, ...]`` → ``torch.bool [steps, B, n_inputs]`` on ``device``
    (default CPU).

    ``generator="mt19937"`` (the default; the spikes of the RTL runs and of every published figure): spike of
    image ``b``, step ``t``, input ``i``: ``u < p`` with ``u`` uniform in [0, 1) drawn (float64, shape
    ``[steps, n]``, row-major) from ``torch.Generator().manual_seed(image_seed(seed, first_index + b))``. Pass
    ``first_index`` = the global index of ``codes[0]`` when encoding a data set in chunks to get the same spikes
    as encoding it at once.

    ``generator="pcg64x16"`` (an explicit option, ~4× faster, OTHER spikes): per image a numpy ``PCG64`` seeded
    with the same ``image_seed``; each 64-bit output gives four 16-bit draws ``r`` (least significant first), in
    the same row-major order, and the input spikes iff ``r < ceil(p · 2^16)``: the spike probability is ``p``
    rounded up to a multiple of 2^-16 (exactly ``p`` for p = 0 and 1). The same chunking/prefix properties hold."""
    steps = _check_steps(steps)
    _check_max_rate(max_rate)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise SnnCosimError(f"seed must be an integer, got {seed!r}")
    if generator not in RATE_GENERATORS:
        raise SnnCosimError(f"generator must be one of {', '.join(RATE_GENERATORS)}, got {generator!r}")
    prob = spike_probability(codes, max_rate=max_rate, input_bits=input_bits)
    batch, n = prob.shape
    out = torch.empty((steps, batch, n), dtype=torch.bool)  # written in place, image by image (time-major)
    if generator == "pcg64x16":
        _pcg64x16_spikes(prob, seed, first_index, out)
    else:
        _mt19937_spikes(prob, seed, first_index, out)
    return out if device is None else out.to(device)


def _mt19937_spikes(prob: torch.Tensor, seed: int, first_index: int, out: torch.Tensor) -> None:
    generator = torch.Generator(device="cpu")
    uniform = torch.empty(out.shape[0], prob.shape[1], dtype=torch.float64)
    draws, probabilities, spikes = uniform.numpy(), prob.numpy(), out.numpy()
    # One generator per image (a seeding loop, not a compute loop): makes spikes independent of chunking. The
    # comparison runs in numpy: torch's thread pool on these small per-image tensors made loaded machines crawl.
    for b in range(prob.shape[0]):
        generator.manual_seed(image_seed(seed, first_index + b))
        torch.rand(uniform.shape, generator=generator, dtype=torch.float64, out=uniform)
        np.less(draws, probabilities[b], out=spikes[:, b])


def _pcg64x16_spikes(prob: torch.Tensor, seed: int, first_index: int, out: torch.Tensor) -> None:
    steps, n = out.shape[0], prob.shape[1]
    thresholds = np.ceil(prob.numpy() * 65536.0).astype(np.uint32)  # p · 2^16 is exact in float64
    spikes = out.numpy()
    words = -(-steps * n // 4)
    for b in range(prob.shape[0]):
        raw = np.random.PCG64(image_seed(seed, first_index + b)).random_raw(words)
        draws = raw.astype("<u8", copy=False).view("<u2")[:steps * n].reshape(steps, n)
        np.less(draws, thresholds[b], out=spikes[:, b])


def iter_rate_encode(codes, steps: int, chunk: int, *, max_rate: float = 1.0, seed: int = 0, input_bits: int = 8,
                     device=None, generator: str = "mt19937") -> Iterator[tuple[int, int, torch.Tensor]]:
    """Encode a large set of codes in chunks of ``chunk`` images: yields ``(start, stop, spikes[T, stop-start, n])``;
    the concatenation equals ``rate_encode(codes, steps, ...)`` of the whole set."""
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise SnnCosimError(f"chunk must be a positive integer, got {chunk!r}")
    n_images = int(codes.shape[0])
    for start in range(0, n_images, chunk):
        stop = min(n_images, start + chunk)
        yield start, stop, rate_encode(codes[start:stop], steps, max_rate=max_rate, seed=seed,
                                       input_bits=input_bits, first_index=start, device=device, generator=generator)


def direct_encode(codes, steps: int, *, input_bits: int = 8, device=None) -> torch.Tensor:
    """The "direct" input: integer codes ``[B, ...]`` → ``int64 [steps, B, n_inputs]``, the same codes at every
    step (a broadcast view, no copy per step)."""
    steps = _check_steps(steps)
    codes = _as_codes(codes, input_bits)
    if device is not None:
        codes = codes.to(device)
    return codes.unsqueeze(0).expand(steps, *codes.shape)


def _check_phases(phases) -> int:
    if isinstance(phases, bool) or not isinstance(phases, (int, np.integer)) or not 1 <= phases <= 16:
        raise SnnCosimError(f"phases K must be an integer in 1..16, got {phases!r}")
    return int(phases)


def phase_of_step(step: int, phases: int) -> int:
    """Phase ``k = 1 + (t − 1) mod K`` of the 1-based global step ``t`` (Kim 2018 Eq. 6: spike weight 2^-k)."""
    phases = _check_phases(phases)
    step = _check_steps(step)
    return 1 + (step - 1) % phases


def weighted_encode(codes, steps: int, phases: int, *, device=None) -> torch.Tensor:
    """Weighted-spike (Kim 2018) input: integer codes ``[B, ...]`` in ``[0, 2^K − 1]`` → ``torch.bool
    [steps, B, n_inputs]`` on ``device`` (default CPU).

    At the 1-based step ``t`` the phase is ``k = 1 + (t − 1) mod K`` and input ``i`` spikes iff bit ``K − k`` of
    its code is set: the MSB at phase 1, the LSB at phase K, repeated every period. Over any whole period the
    ω-weighted spikes (ω = 2^-k) sum to exactly ``code / 2^K`` (Kim Eq. 11). Deterministic: chunking and batching
    never change the spikes."""
    steps = _check_steps(steps)
    phases = _check_phases(phases)
    if isinstance(codes, np.ndarray):
        codes = torch.from_numpy(np.ascontiguousarray(codes))
    elif not isinstance(codes, torch.Tensor):
        codes = torch.as_tensor(codes)
    if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dtype == torch.bool:
        raise SnnCosimError(
            f"weighted input codes must be integers in [0, {2 ** phases - 1}] (K = {phases} bits), got dtype "
            f"{codes.dtype}; use pixel_codes_to_phases() for 8-bit pixels")
    if codes.dim() < 1:
        raise SnnCosimError("input codes must have a batch dimension: shape [B, ...]")
    codes = codes.detach().to("cpu", torch.int64).reshape(codes.shape[0], -1)
    hi = 2 ** phases - 1
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) > hi):
        raise SnnCosimError(
            f"weighted input codes span [{int(codes.min())}, {int(codes.max())}] but K = {phases} phases allow "
            f"[0, {hi}]; use pixel_codes_to_phases(pixels, {phases}) to keep the upper {phases} bits")
    if device is not None:
        codes = codes.to(device)
    t = torch.arange(steps, dtype=torch.int64, device=codes.device)
    shifts = phases - 1 - t % phases  # = K − k
    bits = torch.bitwise_right_shift(codes.unsqueeze(0), shifts.view(steps, 1, 1))
    return torch.bitwise_and(bits, 1).to(torch.bool)


def pixel_codes_to_phases(codes, phases: int, *, pixel_bits: int = 8):
    """The upper ``phases`` (K) bits of ``pixel_bits``-bit pixel codes: ``code >> (pixel_bits − K)`` (Kim 2018:
    with K = 4 "only the upper 4 bits of input pixel values are used"). Returns int64 of the same shape, a numpy
    array for numpy input and a torch tensor otherwise."""
    phases = _check_phases(phases)
    if isinstance(pixel_bits, bool) or not isinstance(pixel_bits, int) or not 1 <= pixel_bits <= 16:
        raise SnnCosimError(f"pixel_bits must be an integer in 1..16, got {pixel_bits!r}")
    if phases > pixel_bits:
        raise SnnCosimError(f"cannot keep the upper {phases} bits of {pixel_bits}-bit pixels; use phases <= "
                            f"{pixel_bits}")
    as_numpy = isinstance(codes, np.ndarray)
    tensor = torch.from_numpy(np.ascontiguousarray(codes)) if as_numpy else torch.as_tensor(codes)
    if tensor.dtype.is_floating_point or tensor.dtype.is_complex or tensor.dtype == torch.bool:
        raise SnnCosimError(f"pixel codes must be integers in [0, {2 ** pixel_bits - 1}], got dtype {tensor.dtype}")
    tensor = tensor.to(torch.int64)
    hi = 2 ** pixel_bits - 1
    if tensor.numel() and (int(tensor.min()) < 0 or int(tensor.max()) > hi):
        raise SnnCosimError(
            f"pixel codes span [{int(tensor.min())}, {int(tensor.max())}] but {pixel_bits}-bit pixels lie in [0, {hi}]")
    out = torch.bitwise_right_shift(tensor, pixel_bits - phases)
    return out.cpu().numpy() if as_numpy else out


def fs_encode(codes, phases: int, *, steps: int | None = None, device=None) -> torch.Tensor:
    """FS-network input (Stöckl & Maass 2021; docs/spec.md §3b): integer codes ``[B, ...]`` in ``[0, 2^K − 1]``
    → ``torch.bool [steps, B, n_inputs]`` on ``device`` (default CPU).

    During window 1 (steps t = 1..K) input ``i`` spikes iff bit ``K − t`` of its code is set (MSB first); the
    input layer's spike weight is ``d_in[t] = 2^(K−t)``, so layer 1 collects ``Σ_i W[j,i]·code_i`` exactly. All
    later steps are silent. ``steps`` defaults to K; pass ``steps = L·K`` (the network's ``fs_latency``) for the
    whole image. Deterministic. 8-bit pixels become K-bit codes with :func:`fs_pixel_codes`."""
    phases = _check_phases(phases)
    steps = phases if steps is None else _check_steps(steps)
    if steps < phases:
        raise SnnCosimError(f"an FS input needs at least K = {phases} steps (window 1), got steps={steps}")
    if isinstance(codes, np.ndarray):
        codes = torch.from_numpy(np.ascontiguousarray(codes))
    elif not isinstance(codes, torch.Tensor):
        codes = torch.as_tensor(codes)
    if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dtype == torch.bool:
        raise SnnCosimError(f"FS input codes must be integers in [0, {2 ** phases - 1}] (K = {phases} bits), got "
                            f"dtype {codes.dtype}; use fs_pixel_codes() for 8-bit pixels")
    if codes.dim() < 1:
        raise SnnCosimError("input codes must have a batch dimension: shape [B, ...]")
    codes = codes.detach().to("cpu", torch.int64).reshape(codes.shape[0], -1)
    hi = 2 ** phases - 1
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) > hi):
        raise SnnCosimError(f"FS input codes span [{int(codes.min())}, {int(codes.max())}] but K = {phases} bits "
                            f"allow [0, {hi}]; use fs_pixel_codes(pixels, {phases})")
    if device is not None:
        codes = codes.to(device)
    out = torch.zeros((steps, *codes.shape), dtype=torch.bool, device=codes.device)
    shifts = torch.arange(phases - 1, -1, -1, dtype=torch.int64, device=codes.device)  # K − t for t = 1..K
    out[:phases] = torch.bitwise_and(torch.bitwise_right_shift(codes.unsqueeze(0), shifts.view(phases, 1, 1)),
                                     1).to(torch.bool)
    return out


def fs_pixel_codes(pixels, phases: int, *, pixel_bits: int = 8):
    """K-bit FS input codes of ``pixel_bits``-bit pixels: ``pixel << (K − 8)`` for K ≥ 8 (exact: the code's
    value ``code/(255·2^(K−8))`` is the pixel/255), ``pixel >> (8 − K)`` for K < 8 (the upper K bits, as for
    weighted spikes). Returns int64, numpy for numpy input and torch otherwise."""
    phases = _check_phases(phases)
    if phases <= pixel_bits:
        return pixel_codes_to_phases(pixels, phases, pixel_bits=pixel_bits)
    codes = pixel_codes_to_phases(pixels, pixel_bits, pixel_bits=pixel_bits)
    return codes << (phases - pixel_bits)
