"""Whole test sets on the RTL: images sharded over simulator processes, checked by per-image digests.

::

    from cosim.shards import cosimulate_sharded
    run = cosimulate_sharded(network, images, 10_000, engine=engine, jobs=2, work_dir="runs/x/rtl")
    run.equivalent, run.comparison.summary(), run.images_per_second, run.peak_rss_bytes

``images(start, stop)`` gives the time-major input spikes ``bool [T, stop − start, n_in]`` of images
``start .. stop − 1`` (an encoder that is deterministic per image: the images are made chunk by chunk, never all at
once). The images are cut into chunks; ``jobs`` chunks run at a time, each in its own simulator process on the one
shared Verilator build (:func:`cosim.session.prepare_engine`), each in its own folder ``work_dir/shard-NNNNN``.

* **digest mode** (default): the harness writes no record or summary lines (``+snn_digest_only``), only each
  image's done line and its digest (docs/spec.md, "Per-image digest"); the golden model runs the same chunk (in
  sub-batches, membranes recorded) and :func:`golden.core.digest.image_digests` gives the digests it must have.
  Images whose digests differ (at most ``rerun_limit`` of them) are run again with the full trace, and
  :func:`golden.core.trace.compare` names the first divergence (image, step, layer, neuron, golden vs RTL) with the
  image's index in the whole run; those traces are kept (:attr:`ShardedRun.golden_trace`, ``rtl_trace``).
* **full-trace mode** (``full_trace=True``): every chunk is a full :func:`cosim.session.cosimulate` run compared
  with its golden trace; the chunks' traces are merged into one (memory grows with the images, as before).

**FS networks** (``network.is_fs``) run in either mode too, but an FS start streams many images through the layer
pipeline and reports once, at the end of the stream: each chunk is cut into whole streams (starts of
``images_per_start`` images; a stream never crosses a chunk), and the digest is one per *stream*
(:func:`golden.core.digest.fs_stream_digests`; the golden model runs whole streams). Digest mode reads per image
only its prediction beat (``P`` lines: :attr:`ShardedRun.predictions`, compared with the golden predictions, which
no digest holds) and per stream its done line and digest; an image's own cycles and counters are not observable
there, so a sharded FS run (both modes, alike) carries the *stream* figures: ``image_cycles`` and
``total_counters`` per stream, the layout in :attr:`ShardedRun.streams`. A stream whose digest differs (or that
holds an image whose prediction differs) is run again whole with the full trace (at most ``rerun_limit`` streams),
which names the first divergence with the image's index in the whole run.

Memory stays bounded in digest mode (a chunk's golden trace at a time per job; the trace files hold two short lines
per image); the stimulus file of a finished chunk is removed. The peak resident memory of this process and of
the largest simulator process is reported (:attr:`ShardedRun.peak_rss_bytes`, ``peak_child_rss_bytes``).
"""

from __future__ import annotations

import os
import re
import resource
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from golden.core.counters import COUNTER_NAMES
from golden.core.digest import fs_stream_digests, image_digests
from golden.core.errors import SnnCosimError, TraceMismatch
from golden.core.network import IntegerNetwork
from golden.core.trace import Comparison, Trace, compare

from . import harness as _harness
from . import session as _session

GOLDEN_BATCH = 250  # images per golden-model call within a chunk (bounds the membranes held at once)
MAX_CHUNK = 1000  # images per simulator process at most (each process costs ~1-2 s of start-up)


def default_jobs() -> int:
    """The cores this process may run on (``os.sched_getaffinity``), else ``os.cpu_count()``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def check_jobs(jobs) -> int:
    """``jobs`` as a positive int (None: :func:`default_jobs`); anything else is refused."""
    if jobs is None:
        return default_jobs()
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or not 1 <= int(jobs) <= 1024:
        raise SnnCosimError(f"--jobs must be an integer in 1..1024, got {jobs!r}")
    return int(jobs)


def chunk_bounds(n_images: int, jobs: int, chunk_images: int | None = None) -> list[tuple[int, int]]:
    """``[(start, stop), ...]``: the images cut into chunks of ``chunk_images`` (default: an even share per job,
    at most :data:`MAX_CHUNK`, so that every job has work)."""
    if n_images < 1:
        raise SnnCosimError(f"a sharded run needs at least one image, got {n_images}")
    size = chunk_images or min(MAX_CHUNK, -(-n_images // jobs))
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise SnnCosimError(f"chunk_images must be a positive integer, got {chunk_images!r}")
    return [(start, min(n_images, start + int(size))) for start in range(0, n_images, int(size))]


@dataclass
class ShardedRun:
    """A sharded co-simulation of ``n_images`` images. Per image (RTL, from its done line): ``predictions``,
    ``image_cycles``, ``total_counters [N, 9]``; ``rtl_digests`` and ``golden_digests`` (``uint64 [N]``; full-trace
    mode: the harness's and those of the golden trace). ``layer_counters [L, 9]`` are the golden counters summed
    over the images per layer (equal to the RTL's when :attr:`equivalent`), ``golden_predictions [N]``.
    ``mismatched`` lists the images whose digests (or, full-trace, traces) differ; ``comparison`` is the full
    comparison that names the first divergence (None when every digest matched), with ``golden_trace`` /
    ``rtl_trace`` the traces it compared (full-trace mode: every image). ``wall_seconds`` is the whole run,
    ``sim_seconds`` the simulators' own time summed over chunks, ``simulated_cycles`` all clock cycles.

    FS networks (both modes): one done line per *stream* (start), so ``image_cycles [S]``, ``total_counters [S, 9]``,
    ``rtl_digests`` / ``golden_digests [S]`` are per stream (docs/spec.md, "Per-image digest", FS streams) and
    :attr:`streams` says which images each stream holds; ``predictions [N]`` are per image (prediction beats).
    ``image_cycles.sum()`` is then the engine's cycles for all images (one C_IMAGE per stream), and
    ``mismatched`` lists every image of a stream whose digest differs and every image whose prediction beat is
    not the golden prediction."""

    n_images: int
    jobs: int
    chunks: int
    full_trace: bool
    predictions: np.ndarray
    image_cycles: np.ndarray
    total_counters: np.ndarray
    rtl_digests: np.ndarray
    golden_digests: np.ndarray
    golden_predictions: np.ndarray
    layer_counters: np.ndarray
    mismatched: np.ndarray
    comparison: Comparison | None
    wall_seconds: float
    sim_seconds: float
    golden_seconds: float
    simulated_cycles: int
    build_seconds: float
    peak_rss_bytes: int
    peak_child_rss_bytes: int
    golden_trace: Trace | None = None
    rtl_trace: Trace | None = None
    problems: list[str] = field(default_factory=list)
    waves_file: Path | None = None  # full-trace mode with ``waves``: the first chunk's waveform
    streams: "FsStreamFigures | None" = None  # FS networks: the starts (see the class docstring)
    rerun_images: np.ndarray | None = None  # digest mode, on a mismatch: the images of golden_trace / rtl_trace

    @property
    def equivalent(self) -> bool:
        return self.mismatched.size == 0 and not self.problems

    @property
    def first_difference(self) -> str | None:
        if self.equivalent:
            return None
        if self.comparison is not None and self.comparison.first_difference is not None:
            return str(self.comparison.first_difference)
        return self.problems[0] if self.problems else f"image {int(self.mismatched[0])}: digest differs"

    @property
    def images_per_second(self) -> float:
        return self.n_images / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def cycles_per_second(self) -> float:
        return self.simulated_cycles / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def totals(self, source: str = "rtl") -> dict[str, int]:
        """Every counter summed over the images: the RTL's done-line totals (``"rtl"``) or the golden model's."""
        if source == "rtl":
            return {name: int(self.total_counters[:, k].sum()) for k, name in enumerate(COUNTER_NAMES)}
        return {name: int(self.layer_counters[:, k].sum()) for k, name in enumerate(COUNTER_NAMES)}

    def save_digests(self, path: str | os.PathLike) -> Path:
        """``digests.npz``: per image the RTL and golden digests, predictions, cycles and totals (FS: digests, cycles
        and totals per stream, with ``stream_bases``, ``stream_counts`` and per image ``pred_cycles``)."""
        path = Path(path)
        extra = {} if self.streams is None else {"stream_bases": self.streams.bases,
                                                 "stream_counts": self.streams.counts,
                                                 "pred_cycles": self.streams.pred_cycles}
        np.savez_compressed(path, rtl_digests=self.rtl_digests, golden_digests=self.golden_digests,
                            predictions=self.predictions, golden_predictions=self.golden_predictions,
                            image_cycles=self.image_cycles, total_counters=self.total_counters,
                            mismatched=self.mismatched, **extra)
        return path


@dataclass
class FsStreamFigures:
    """The starts of a sharded FS run: stream k holds images ``bases[k] .. bases[k] + counts[k] − 1`` of the run
    (streams never cross a chunk); ``pred_cycles [N]``: the cycle of each image's prediction beat since its
    stream's start (the one per-image timing an FS digest run observes)."""

    bases: np.ndarray
    counts: np.ndarray
    pred_cycles: np.ndarray

    def images(self, streams) -> np.ndarray:
        """The images of the streams ``streams`` (indices), in order."""
        ks = np.asarray(streams, dtype=np.int64).reshape(-1)
        if not ks.size:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([np.arange(self.bases[k], self.bases[k] + self.counts[k]) for k in ks.tolist()])


def peak_rss() -> tuple[int, int]:
    """``(this process, largest finished child)`` peak resident memory in bytes (``getrusage``)."""
    scale = 1 if os.uname().sysname == "Darwin" else 1024
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale)


@dataclass
class _Chunk:
    start: int
    stop: int
    predictions: np.ndarray
    image_cycles: np.ndarray
    total_counters: np.ndarray
    rtl_digests: np.ndarray
    golden_digests: np.ndarray
    golden_predictions: np.ndarray
    layer_counters: np.ndarray
    sim_seconds: float
    golden_seconds: float
    cycles: int
    problems: list[str]
    golden_trace: Trace | None = None
    rtl_trace: Trace | None = None
    comparison: Comparison | None = None
    waves_file: Path | None = None
    bases: np.ndarray | None = None  # FS: the chunk's streams, image indices of the whole run
    counts: np.ndarray | None = None
    pred_cycles: np.ndarray | None = None


def _as_numpy(spikes) -> np.ndarray:
    try:
        import torch

        if isinstance(spikes, torch.Tensor):
            return spikes.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    return np.asarray(spikes)


def _golden_part(network: IntegerNetwork, golden, spikes: np.ndarray, config) -> tuple:
    """Golden digests, predictions and per-layer counter sums of time-major ``spikes``, in sub-batches."""
    orders = [config.hardware_order(l) for l in range(1, config.n_layers + 1)] if config.spatial else None
    digests, predictions, counters = [], [], np.zeros((len(network.layers), len(COUNTER_NAMES)), dtype=np.int64)
    for a in range(0, spikes.shape[1], GOLDEN_BATCH):
        trace = golden(spikes[:, a:a + GOLDEN_BATCH])
        digests.append(image_digests(trace, int(config.lanes), int(config.membrane_bits), int(config.counter_bits),
                                     orders, config.layer_sizes))
        predictions.append(np.asarray(trace.predictions, dtype=np.int64))
        counters += trace.counters.sum(axis=(0, 1))
    return np.concatenate(digests), np.concatenate(predictions), counters


def _digest_chunk(network, config, engine, golden, spikes: np.ndarray, start: int, work: Path) -> _Chunk:
    """One chunk in digest mode: the simulator (D and H lines only), then the golden digests of the same images."""
    plan = _session.plan_run(network, config, _session._as_input_spikes(spikes, network.n_inputs))
    work.mkdir(parents=True, exist_ok=True)
    files = _session.write_job_files(work, network, config, engine, plan)
    launched = _session.launch_simulator(engine, files, plan, digest_only=True)
    parsed = _harness.parse_digest_file(files.trace, engine.params, plan.n_images) if files.trace.is_file() else None
    if launched.failure is not None:
        detail = f"; harness: {parsed.error}" if parsed is not None and parsed.error else ""
        raise _session._runner.SimulationError(f"{launched.failure}{detail}") from None
    files.stimulus.unlink(missing_ok=True)  # the biggest file of a chunk; the run can be repeated from the inputs
    problems = [re.sub(r"^image (\d+)", lambda m: f"image {start + int(m.group(1))}", p) for p in parsed.problems]
    for entry in launched.summary.get("images", []):
        i = int(entry["image"])
        if 0 <= i < plan.n_images and (int(entry["image_cycles"]) != int(parsed.image_cycles[i])
                                       or int(entry["prediction"]) != int(parsed.predictions[i])
                                       or list(entry["total_counters"]) != parsed.total_counters[i].tolist()):
            problems.append(f"image {start + i}: what cocotb read at done differs from the harness's done line")
            break
    t0 = time.perf_counter()
    g_digests, g_predictions, counters = _golden_part(network, golden, spikes, config)
    summary = launched.summary
    return _Chunk(start, start + plan.n_images, parsed.predictions, parsed.image_cycles, parsed.total_counters,
                  parsed.digests, g_digests, g_predictions, counters,
                  float(summary.get("sim_seconds") or launched.wall_seconds), time.perf_counter() - t0,
                  int(summary.get("cycles", 0)), problems)


def _orders(config):
    return [config.hardware_order(l) for l in range(1, config.n_layers + 1)] if config.spatial else None


def _stream_digests(trace: Trace, config, phases: int, bases: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """:func:`golden.core.digest.fs_stream_digests` of ``trace`` for the streams ``bases``/``counts`` (relative to
    the trace's first image) on the engine ``config``."""
    return fs_stream_digests(trace, bases, counts, phases, int(config.lanes), int(config.membrane_bits),
                             int(config.counter_bits), _orders(config), config.layer_sizes)


def _fs_golden_part(network: IntegerNetwork, golden, spikes: np.ndarray, config, bases: np.ndarray,
                    counts: np.ndarray) -> tuple:
    """Golden stream digests, per-image predictions and per-layer counter sums of time-major FS ``spikes`` whose
    streams are ``bases``/``counts``: the golden model runs whole streams, about :data:`GOLDEN_BATCH` images at a
    time (a stream's digest needs all its images)."""
    digests, predictions = [], []
    counters = np.zeros((len(network.layers), len(COUNTER_NAMES)), dtype=np.int64)
    k = 0
    while k < len(bases):
        stop = k + 1
        while stop < len(bases) and bases[stop] + counts[stop] - bases[k] <= GOLDEN_BATCH:
            stop += 1
        a, b = int(bases[k]), int(bases[stop - 1] + counts[stop - 1])
        trace = golden(spikes[:, a:b])
        digests.append(_stream_digests(trace, config, int(network.phases), bases[k:stop] - a, counts[k:stop]))
        predictions.append(np.asarray(trace.predictions, dtype=np.int64))
        counters += trace.counters.sum(axis=(0, 1))
        k = stop
    return np.concatenate(digests), np.concatenate(predictions), counters


def _fs_digest_chunk(network, config, engine, golden, spikes: np.ndarray, start: int, work: Path,
                     images_per_start: int | None) -> _Chunk:
    """One FS chunk in digest mode: the simulator (P, D and H lines only: per image its prediction, per stream its
    done line and digest), then the golden stream digests of the same streams."""
    plan = _session.plan_run(network, config, _session._as_input_spikes(spikes, network.n_inputs), images_per_start)
    work.mkdir(parents=True, exist_ok=True)
    files = _session.write_job_files(work, network, config, engine, plan)
    launched = _session.launch_simulator(engine, files, plan, digest_only=True)
    parsed = _harness.parse_fs_digest_file(files.trace, engine.params, plan.bases, plan.counts) \
        if files.trace.is_file() else None
    if launched.failure is not None:
        detail = f"; harness: {parsed.error}" if parsed is not None and parsed.error else ""
        raise _session._runner.SimulationError(f"{launched.failure}{detail}") from None
    files.stimulus.unlink(missing_ok=True)
    done = parsed.done
    problems = list(parsed.problems) + _session.cross_check_fs_streams(
        launched.summary, plan.bases, done.cycles, done.predictions, done.totals, parsed.predictions)
    problems = [_shift_images(p, start) for p in problems]
    t0 = time.perf_counter()
    g_digests, g_predictions, counters = _fs_golden_part(network, golden, spikes, config, plan.bases, plan.counts)
    summary = launched.summary
    return _Chunk(start, start + plan.n_images, parsed.predictions, done.cycles, done.totals, parsed.digests,
                  g_digests, g_predictions, counters, float(summary.get("sim_seconds") or launched.wall_seconds),
                  time.perf_counter() - t0, int(summary.get("cycles", 0)), problems,
                  bases=plan.bases + start, counts=plan.counts, pred_cycles=parsed.pred_cycles)


def _shift_images(problem: str, start: int) -> str:
    """A chunk's problem line with its image indices made those of the whole run."""
    def shift(m: re.Match) -> str:
        last = f"..{start + int(m.group(3))}" if m.group(3) else ""
        return f"{m.group(1)} {start + int(m.group(2))}{last}"

    return re.sub(r"\b(images?) (\d+)(?:\.\.(\d+))?(?! of the stream)", shift, problem)


def _full_chunk(network, config, engine, golden, spikes: np.ndarray, start: int, work: Path,
                waves: bool = False, images_per_start: int | None = None) -> _Chunk:
    """One chunk in full-trace mode: :func:`cosim.session.cosimulate` and the golden trace, compared (FS: the
    digests and figures per stream)."""
    run = _session.cosimulate(network, spikes, engine=engine, work_dir=work, waves=waves,
                              images_per_start=images_per_start)
    t0 = time.perf_counter()
    golden_trace = golden(spikes)
    golden_seconds = time.perf_counter() - t0
    comparison = compare(golden_trace, run.trace)
    if run.fs is not None:
        f = run.fs
        return _Chunk(start, start + run.trace.n_images, run.trace.predictions, f.cycles, f.totals,
                      _stream_digests(run.trace, config, f.phases, f.bases, f.counts),
                      _stream_digests(golden_trace, config, f.phases, f.bases, f.counts),
                      np.asarray(golden_trace.predictions, dtype=np.int64), golden_trace.counters.sum(axis=(0, 1)),
                      run.sim_seconds, golden_seconds, run.simulated_cycles, list(run.problems), golden_trace,
                      run.trace, comparison, run.waves_file, f.bases + start, f.counts, f.pred_cycles)
    widths = (int(config.lanes), int(config.membrane_bits), int(config.counter_bits), _orders(config),
              config.layer_sizes)
    g_digests = image_digests(golden_trace, *widths)
    r_digests = image_digests(run.trace, *widths)
    return _Chunk(start, start + run.trace.n_images, run.trace.predictions, run.trace.image_cycles,
                  run.hardware_totals, r_digests, g_digests, np.asarray(golden_trace.predictions, dtype=np.int64),
                  golden_trace.counters.sum(axis=(0, 1)), run.sim_seconds, golden_seconds, run.simulated_cycles,
                  list(run.problems), golden_trace, run.trace, comparison, run.waves_file)


def _with_image(comparison: Comparison, images: np.ndarray, n_images: int) -> Comparison:
    """``comparison`` of a sub-run whose image k is image ``images[k]`` of the whole run, with that index."""
    d = comparison.first_difference
    if d is not None:
        comparison = replace(comparison, first_difference=replace(d, image=int(images[d.image])))
    return replace(comparison, n_images=n_images)


def _one_at_a_time(golden: Callable[[np.ndarray], Trace]) -> Callable[[np.ndarray], Trace]:
    """``golden`` behind a lock: the chunks' threads call it, and a golden simulator is not thread-safe (one
    ``IntegerSimulator`` run from two threads at once gave wrong membranes; the digests caught it). The golden
    model keeps its own threads; the simulators run in their own processes meanwhile."""
    lock = threading.Lock()

    def call(spikes: np.ndarray) -> Trace:
        with lock:
            return golden(spikes)
    return call


def concat_traces(traces: list[Trace]) -> Trace:
    """One trace of the images of ``traces`` in order (their meta: the first's, the input digest recomputed)."""
    first = traces[0]
    cat = np.concatenate
    membranes = None if any(t.membranes is None for t in traces) else \
        [cat([t.membranes[l] for t in traces]) for l in range(first.n_layers)]
    inputs = None if any(t.input_spikes is None for t in traces) else cat([t.input_spikes for t in traces])
    meta = {k: v for k, v in first.meta.items() if k != "input_sha256"}
    return Trace(spikes=[cat([t.spikes[l] for t in traces]) for l in range(first.n_layers)],
                 counters=cat([t.counters for t in traces]), image_cycles=cat([t.image_cycles for t in traces]),
                 predictions=cat([t.predictions for t in traces]), membranes=membranes, input_spikes=inputs,
                 meta=meta)


def cosimulate_sharded(network: IntegerNetwork, images: Callable[[int, int], object], n_images: int, *,
                       engine: _session.Engine | None = None, lanes: int = 8, jobs: int | None = None,
                       chunk_images: int | None = None, work_dir: str | os.PathLike, full_trace: bool = False,
                       golden: Callable[[np.ndarray], Trace] | None = None, progress: bool = False,
                       rerun_limit: int = 4, build_dir: str | os.PathLike | None = None,
                       waves: bool = False, images_per_start: int | None = None) -> ShardedRun:
    """Co-simulate images ``0 .. n_images − 1`` (``images(start, stop)`` → time-major ``bool [T, n, n_in]``) on
    ``jobs`` simulator processes (default: :func:`default_jobs`) and check them against ``golden(spikes)``
    (default: :func:`cosim.session.golden_reference`, membranes recorded; called from one thread at a time).
    See the module docstring for the two modes; ``waves`` runs in full-trace mode (a waveform per chunk; the first
    is :attr:`ShardedRun.waves_file`). FS networks: each chunk streams its images in starts of ``images_per_start``
    (default: as many as one start allows, ``EngineConfig.fs_max_images``), checked per stream. Raises
    :class:`cosim.runner.SimulationError` when a simulator fails (its chunk's folder is kept)."""
    from hw.config import EngineConfig

    jobs = check_jobs(jobs)
    network.validate()
    config = engine.config if engine is not None else EngineConfig.for_network(network, lanes=lanes)
    config.check_fits(network)
    if engine is None:
        engine = _session.prepare_engine(config, build_dir=build_dir, waves=waves)
    if golden is None:
        def golden(spikes):
            return _session.golden_reference(network, spikes, lanes=int(config.lanes))
    golden = _one_at_a_time(golden)
    full_trace = bool(full_trace or waves)
    if images_per_start is not None and not network.is_fs:
        raise SnnCosimError("images_per_start applies to FS networks only (input_coding 'fs')")
    bounds = chunk_bounds(n_images, jobs, chunk_images)
    work = Path(work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    t0 = time.perf_counter()

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_images, unit="img", desc=f"rtl x{jobs}", leave=False)

    stopping = threading.Event()

    def one(k: int) -> _Chunk:
        start, stop = bounds[k]
        if stopping.is_set():
            raise SnnCosimError("the sharded run was stopped")
        with lock:  # the encoder may share state (torch); it is fast next to the simulation
            spikes = _as_numpy(images(start, stop))
        folder = work / f"shard-{k:05d}"
        if full_trace:
            chunk = _full_chunk(network, config, engine, golden, spikes, start, folder, waves, images_per_start)
        elif network.is_fs:
            chunk = _fs_digest_chunk(network, config, engine, golden, spikes, start, folder, images_per_start)
        else:
            chunk = _digest_chunk(network, config, engine, golden, spikes, start, folder)
        if bar is not None:
            bar.update(stop - start)
        return chunk

    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        chunks = list(pool.map(one, range(len(bounds))))
    except BaseException:  # an interrupt or a failed chunk: no other chunk starts, running simulators end now
        stopping.set()
        pool.shutdown(wait=False, cancel_futures=True)
        _session._runner.stop_all_process_groups()
        pool.shutdown(wait=True)
        raise
    finally:
        pool.shutdown(wait=True)
        if bar is not None:
            bar.close()
    cat = np.concatenate
    rtl_digests = cat([c.rtl_digests for c in chunks])
    golden_digests = cat([c.golden_digests for c in chunks])
    predictions, golden_predictions = cat([c.predictions for c in chunks]), cat([c.golden_predictions for c in chunks])
    problems = [p for c in chunks for p in c.problems]
    streams = None
    if network.is_fs:
        streams = FsStreamFigures(cat([c.bases for c in chunks]), cat([c.counts for c in chunks]),
                                  cat([c.pred_cycles for c in chunks]))
    golden_trace = rtl_trace = comparison = rerun = None
    if full_trace:
        golden_trace, rtl_trace = concat_traces([c.golden_trace for c in chunks]), \
            concat_traces([c.rtl_trace for c in chunks])
        bad = [k for k, c in enumerate(chunks) if not c.comparison.equivalent]
        mismatched = _mismatched_images(rtl_digests != golden_digests, streams)
        if bad or mismatched.size:
            comparison = compare(golden_trace, rtl_trace)
            if comparison.first_difference is not None:
                mismatched = np.union1d(mismatched, [comparison.first_difference.image])
    else:
        mismatched = _mismatched_images(rtl_digests != golden_digests, streams)
        if streams is not None:  # predictions are not in an FS stream's digest (but in the full trace)
            mismatched = np.union1d(mismatched, np.flatnonzero(predictions != golden_predictions))
        if mismatched.size:
            rerun = _rerun_images(mismatched, streams, rerun_limit)
            spikes = cat([_as_numpy(images(int(a), int(b))) for a, b in _runs(rerun)], axis=1)
            again = _session.cosimulate(network, spikes, engine=engine, work_dir=work / "rerun", strict=False)
            golden_trace, rtl_trace = golden(spikes), again.trace
            for trace in (golden_trace, rtl_trace):
                trace.meta["images"] = rerun.tolist()
            comparison = _with_image(compare(golden_trace, rtl_trace), rerun, n_images)
            if comparison.equivalent:
                problems.append(f"image {int(rerun[0])}: the digests differ but the full traces agree (a digest "
                                f"bug, or a run that is not repeatable)")
    self_rss, child_rss = peak_rss()
    return ShardedRun(
        n_images=n_images, jobs=jobs, chunks=len(bounds), full_trace=full_trace,
        predictions=predictions, image_cycles=cat([c.image_cycles for c in chunks]),
        total_counters=cat([c.total_counters for c in chunks]), rtl_digests=rtl_digests,
        golden_digests=golden_digests, golden_predictions=golden_predictions,
        layer_counters=sum(c.layer_counters for c in chunks), mismatched=mismatched, comparison=comparison,
        wall_seconds=time.perf_counter() - t0, sim_seconds=sum(c.sim_seconds for c in chunks),
        golden_seconds=sum(c.golden_seconds for c in chunks), simulated_cycles=sum(c.cycles for c in chunks),
        build_seconds=engine.handle.seconds, peak_rss_bytes=self_rss, peak_child_rss_bytes=child_rss,
        golden_trace=golden_trace, rtl_trace=rtl_trace, problems=problems, waves_file=chunks[0].waves_file,
        streams=streams, rerun_images=rerun)


def _mismatched_images(differs: np.ndarray, streams: FsStreamFigures | None) -> np.ndarray:
    """The images whose digest differs (``differs`` per image, or FS: per stream, then every image of it)."""
    bad = np.flatnonzero(differs)
    return bad if streams is None else streams.images(bad)


def _rerun_images(mismatched: np.ndarray, streams: FsStreamFigures | None, limit: int) -> np.ndarray:
    """The images to run again with the full trace: the first ``limit`` (at least one) mismatched images, or FS:
    every image of the first ``limit`` streams that hold one (a stream's digest does not say which)."""
    limit = max(1, limit)
    if streams is None:
        return mismatched[:limit]
    stream = np.searchsorted(streams.bases, mismatched, side="right") - 1
    return streams.images(np.unique(stream)[:limit])


def _runs(images: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, stop), ...]``: sorted ``images`` as ranges of consecutive indices."""
    cuts = np.flatnonzero(np.diff(images) != 1) + 1
    return [(int(part[0]), int(part[-1]) + 1) for part in np.split(images, cuts)]


def check_sharded(run: ShardedRun, save_dir: str | os.PathLike | None = None) -> None:
    """Raise :class:`TraceMismatch` (the first divergence; traces and ``mismatch.txt`` in ``save_dir``) unless
    ``run`` is equivalent."""
    if run.equivalent:
        return
    where = ""
    if save_dir is not None and run.golden_trace is not None and run.rtl_trace is not None:
        _session.check_equivalence(run.golden_trace, run.rtl_trace, save_dir)
        where = f" (traces and report in {save_dir})"
    raise TraceMismatch(f"MISMATCH at {run.first_difference}{where}")


__all__ = ["FsStreamFigures", "ShardedRun", "check_jobs", "check_sharded", "chunk_bounds", "concat_traces",
           "cosimulate_sharded", "default_jobs", "peak_rss"]
