"""Co-simulation sessions: run an integer network on the RTL engine under Verilator and get a golden-format Trace.

::

    from cosim.session import RtlSimulator, check_equivalence
    rtl = RtlSimulator(network, lanes=8, work_dir="runs/x/rtl").run(input_spikes)  # bool [T, N, n_in], time-major
    golden = IntegerSimulator(network).run(input_spikes, lanes=8, record_membranes=True)
    check_equivalence(golden, rtl, save_dir="runs/x")                              # SPEC §6

The three backends take the same time-major input spikes ``[T, N, n_in]`` and return the same
:class:`golden.core.trace.Trace`: :class:`golden.simulation.simulate.IntegerSimulator` (golden, bit-exact),
:class:`golden.simulation.simulate.FloatSimulator` (float64 accuracy model) and :class:`RtlSimulator` (the RTL under
Verilator; its cost figures in ``last_run``, an :class:`RtlRun`, which :func:`cosimulate` returns directly).

What happens (docs/cosim.md):

1. ``EngineConfig.for_network`` sizes the engine (or the caller passes one ``config`` shared by several networks
   of one shape: neuron parameters, weights and thresholds are loaded at run time);
2. ``hw.verilog.engine_verilog(config)`` gives ``snn_engine``; :mod:`cosim.harness` renders ``tb_top`` for its
   widths; :func:`cosim.runner.build` compiles both once (cached by content under the build directory);
3. the configuration words (``hw.config_image``) and the input spike words are written to text files, the
   simulator runs :mod:`cosim.tb_engine`, and the harness's trace text file is parsed into a
   :class:`golden.core.trace.Trace`. The engine's own per-image totals (read through cocotb handles and logged by the
   harness) are cross-checked against the per-step counters; any disagreement is an RTL bug and raises
   :class:`golden.core.errors.TraceMismatch` (after the partial trace has been saved).

FS networks (``input_coding = "fs"``, Stöckl & Maass 2021) stream all N images through the layer pipeline with one
``start`` (``n_images`` = N; several starts only beyond ``EngineConfig.fs_max_images(K)`` or ``images_per_start``):
the harness feeds each image's K window-1 input words, the beats (global steps) are mapped back to per-image
traces ``[N, L·K, ...]`` of the golden form, predictions come from the ``pred_valid`` beats, and the stream's
hardware totals and cycles are checked against the per-image counters and ``golden.core.cycle_model.fs_stream_cycles``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golden.core.counters import COUNTER_NAMES
from golden.core.errors import SnnCosimError, TraceMismatch
from golden.core.network import IntegerNetwork
from golden.core.trace import Comparison, Trace, compare

from . import harness as _harness
from . import runner as _runner

BUILD_DIR_ENV = "SNNCOSIM_BUILD_DIR"
DEFAULT_BUILD_DIR = Path(".snncosim") / "build"

_verilog_cache: dict[tuple, str] = {}
_verilog_lock = threading.Lock()


def default_build_dir() -> Path:
    """``$SNNCOSIM_BUILD_DIR``, else ``.snncosim/build`` under the current directory."""
    return Path(os.environ.get(BUILD_DIR_ENV) or DEFAULT_BUILD_DIR).resolve()


# ----------------------------------------------------------------------------------------------- engine builds
def _hw_source_hash() -> str:
    """Hash of the hardware generator's sources as imported (``hw.SOURCE_DIGEST``): a changed generator must not
    reuse old Verilog, and Verilog made by old code must not be cached under the key of new sources."""
    import hw

    return hw.SOURCE_DIGEST


def _check_ports(config, text: str) -> None:
    """The harness declares and connects the ports of ``hw.ports.engine_ports``; fail clearly if the generated
    ``snn_engine`` has others (names, directions or widths)."""
    from hw.ports import CLOCK_PORTS, port_widths
    from hw.verilog import MODULE_NAME, verilog_ports

    expected = dict(port_widths(config), **CLOCK_PORTS)
    actual = verilog_ports(text, MODULE_NAME)
    if actual != expected:
        diff = sorted(set(actual.items()) ^ set(expected.items()))
        raise SnnCosimError(f"snn_engine ports differ from hw.ports.engine_ports (the harness's): {diff[:4]}")


def engine_verilog_text(config, cache_dir: str | os.PathLike | None = None) -> str:
    """``snn_engine`` Verilog for ``config``, memoised per process and, with ``cache_dir``, on disk; both keyed by
    the configuration, the ``hw/*.py`` sources and the Amaranth version (elaboration takes seconds to minutes)."""
    import amaranth

    version = getattr(amaranth, "__version__", "?")
    key = (config, _hw_source_hash(), version)
    with _verilog_lock:
        if key in _verilog_cache:
            return _verilog_cache[key]
        path = None
        if cache_dir is not None:
            name = _harness.content_hash(json.dumps(config.as_dict(), sort_keys=True), key[1], version)[:24]
            path = Path(cache_dir) / f"snn_engine-{name}.v"
            if path.is_file():
                _verilog_cache[key] = path.read_text()
                return _verilog_cache[key]
        from hw.verilog import engine_verilog

        text = engine_verilog(config)
        _check_ports(config, text)
        if path is not None:
            _harness._write_if_changed(path, text)
        _verilog_cache[key] = text
        return text


@dataclass(frozen=True)
class Engine:
    """A built engine + harness for one :class:`hw.config.EngineConfig` (what :func:`prepare_engine` returns)."""

    config: object
    params: _harness.HarnessParams
    handle: _runner.BuildHandle
    sources: tuple[Path, ...]
    generate_seconds: float
    clock: str = "cpp"  # where the clock lives (cosim.harness.HARNESS_CLOCKS); "gpi": cocotb's GPI clock drives it

    @property
    def build_seconds(self) -> float:
        return self.handle.seconds


def prepare_engine(config, *, waves: bool = False, build_dir: str | os.PathLike | None = None,
                   clock: str = "cpp") -> Engine:
    """Generate and build (or reuse) the Verilator model of ``config``. Builds are cached by content under
    ``build_dir`` (default :func:`default_build_dir`), so this is cheap after the first call. ``clock``: where the
    clock lives, ``"cpp"`` (the simulation's C++ main, cosim/hdl/clock_main.cpp: the fastest), ``"verilog"`` (the
    harness, built with ``--timing``) or ``"gpi"`` (cocotb's GPI clock, no ``--timing``); scripts/bench_scale.py
    --clocks compares them. Waveform builds take the harness's Verilog clock whatever ``clock`` says."""
    root = Path(build_dir).resolve() if build_dir is not None else default_build_dir()
    t0 = time.perf_counter()
    verilog = engine_verilog_text(config, cache_dir=root / "verilog")
    params = _harness.HarnessParams.from_engine_config(config)
    style = _harness.harness_clock_style(clock, bool(waves))
    harness_text = _harness.harness_verilog(params, waves=bool(waves), clock=clock)
    generate_seconds = time.perf_counter() - t0
    src = root / "src"
    engine_path = _harness._write_if_changed(
        src / f"snn_engine-{_harness.content_hash(verilog)[:16]}.v", verilog)
    harness_path = _harness._write_if_changed(
        src / f"tb_top-{_harness.content_hash(harness_text)[:16]}.sv", harness_text)
    main = _harness.clock_main_path() if style == "cpp" else None
    handle = _runner.build([engine_path, harness_path], _harness.TOPLEVEL, root, timing=style in ("fast", "waves"),
                           waves=waves, public="top-rw" if style == "gpi" else "top", main=main)
    return Engine(config, params, handle, (engine_path, harness_path), generate_seconds, clock)


def config_for_networks(networks, lanes: int = 8, **overrides):
    """The smallest :class:`hw.config.EngineConfig` that runs every network of ``networks`` (one shape, e.g. the
    IF-zero, IF-subtract and LIF conversions of one ANN): widths are the maxima of each network's own config,
    so all of them share one Verilator build. FS networks (K = 8 and K = 10 conversions of one ANN, with one
    ``membrane_bits``) share a build the same way: the widest ``phase_bits`` and ``fs_shift_bits`` win."""
    from hw.config import EngineConfig

    networks = list(networks)
    if not networks:
        raise SnnCosimError("config_for_networks needs at least one network")
    configs = [EngineConfig.for_network(net, lanes=lanes) for net in networks]
    widths = {name: max(getattr(c, name) for c in configs)
              for name in ("acc_bits", "bias_bits", "threshold_bits", "phase_bits", "fs_shift_bits")}
    widths.update(overrides)
    config = EngineConfig.for_network(networks[0], lanes=lanes, **widths)
    for net in networks[1:]:
        config.check_fits(net)
    return config


def golden_reference(network: IntegerNetwork, input_spikes, lanes: int = 8) -> Trace:
    """The golden integer model's trace for the same time-major input spikes ``bool [T, N, n_in]`` that
    :func:`cosimulate` takes (membranes recorded, counters for ``lanes``)."""
    import torch

    from golden.simulation.simulate import IntegerSimulator

    spikes = _as_input_spikes(input_spikes, network.n_inputs)
    time_major = torch.from_numpy(np.ascontiguousarray(spikes.transpose(1, 0, 2)))
    return IntegerSimulator(network).run(time_major, lanes=lanes, record_membranes=True)


# ----------------------------------------------------------------------------------------------- inputs
def _as_input_spikes(input_spikes, n_inputs: int) -> np.ndarray:
    """Time-major input spikes ``[T, N, n_in]`` (numpy or torch, bool or 0/1) → ``bool [N, T, n_in]`` image-major,
    C-contiguous (the order of the stimulus file and of :attr:`Trace.input_spikes`)."""
    try:
        import torch

        if isinstance(input_spikes, torch.Tensor):
            input_spikes = input_spikes.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    spikes = np.asarray(input_spikes)
    if spikes.ndim != 3 or spikes.shape[2] != n_inputs:
        raise SnnCosimError(f"input spikes must have shape [T, N, {n_inputs}] (time-major), got {spikes.shape}")
    if spikes.shape[0] < 1 or spikes.shape[1] < 1:
        raise SnnCosimError(f"input spikes [T, N, n_in] need at least one step and one image, got {spikes.shape}")
    if spikes.shape[0] > 65535:
        raise SnnCosimError(f"the engine runs at most 65535 steps per image, got T={spikes.shape[0]} (input spikes "
                            f"[T, N, n_in])")
    if spikes.dtype != bool:
        if not np.issubdtype(spikes.dtype, np.integer) or (spikes.size and (spikes.min() < 0 or spikes.max() > 1)):
            raise SnnCosimError("input spikes must be bool (or 0/1 integers); encode codes with golden.simulation.encoding")
        spikes = spikes != 0
    return np.ascontiguousarray(spikes.transpose(1, 0, 2))


def _fs_input_spikes(spikes: np.ndarray, network: IntegerNetwork) -> tuple[np.ndarray, np.ndarray]:
    """``(stimulus, record)`` of FS input spikes (image-major ``[N, T, n_0]`` here, from :func:`_as_input_spikes`;
    K ≤ T ≤ L·K, silent after window 1, as the golden model takes them): the K window-1 steps the engine reads, and
    the spikes padded to L·K steps (what the golden trace records)."""
    phases, latency = int(network.phases), int(network.fs_latency)
    steps = spikes.shape[1]
    if not phases <= steps <= latency:
        raise SnnCosimError(f"an FS network takes input spikes of K = {phases} to L·K = {latency} steps per image, "
                            f"got T={steps}; use golden.simulation.encoding.fs_encode(codes, {phases}, steps={latency})")
    if steps > phases and spikes[:, phases:].any():
        raise SnnCosimError(f"FS input spikes after window 1 (step > K = {phases}); the input is sent once, MSB "
                            f"first (golden.simulation.encoding.fs_encode)")
    record = np.zeros((spikes.shape[0], latency, spikes.shape[2]), dtype=bool)
    record[:, :steps] = spikes
    return np.ascontiguousarray(spikes[:, :phases]), record


def _images_per_start(config, network: IntegerNetwork, images_per_start, n_images: int) -> int:
    limit = config.fs_max_images(int(network.phases))
    if limit < 1:
        raise SnnCosimError(f"one FS image of L·K = {network.fs_latency} steps does not fit the 16-bit step counter")
    if images_per_start is None:
        return min(limit, n_images)
    if isinstance(images_per_start, bool) or not isinstance(images_per_start, (int, np.integer)) \
            or not 1 <= images_per_start <= limit:
        raise SnnCosimError(f"images_per_start must be an integer in 1..{limit} (EngineConfig.fs_max_images("
                            f"{network.phases})), got {images_per_start!r}")
    return int(images_per_start)


def _watchdog_cycles(config, steps: int) -> int:
    """Generous bound on one image's cycles: every input of every layer spiking at every step, doubled."""
    def events(l):  # most EVENT cycles one input spike of layer l can cost (conv: every tap; pool: one group)
        geo = config.geometry(l)
        return geo.taps * (1 if geo.is_pool else config.groups(l)) if geo else config.groups(l)

    per_step = sum(config.words(l) + config.layer_sizes[l - 1] * events(l) + config.state_words(l)
                   + config.c_layer for l in range(1, config.n_layers + 1))
    return 2 * (steps * per_step + config.c_image) + 1000


# ----------------------------------------------------------------------------------------------- results
@dataclass
class RtlRun:
    """One RTL co-simulation: the trace (golden format) and what it cost.

    ``simulated_cycles`` counts every clock cycle of the simulation (reset and configuration included);
    ``cycles_per_second`` and ``images_per_second`` are measured over the simulation proper (``sim_seconds``,
    from the first cocotb wake-up to the last image), ``wall_seconds`` is the whole simulator process (start-up
    included), ``build_seconds`` the Verilator build (0 when cached).

    FS runs: ``hardware_totals`` ``[S, 9]`` and ``harness_cycles`` ``[S]`` are per start (stream), and ``fs``
    holds the streams' reports (:class:`cosim.harness.FsStreams`); :meth:`fs_figures` gives the throughput in
    steady state."""

    trace: Trace
    wall_seconds: float
    sim_seconds: float
    simulated_cycles: int
    cycles_per_second: float
    images_per_second: float
    build_seconds: float
    build_cached: bool
    generate_seconds: float
    parse_seconds: float
    config: object
    work_dir: Path | None  # None when the run used a temporary directory (removed)
    trace_text: Path | None
    hardware_totals: np.ndarray
    harness_cycles: np.ndarray
    waves_file: Path | None = None
    problems: list[str] = field(default_factory=list)
    fs: _harness.FsStreams | None = None

    def summary(self) -> str:
        n = self.trace.n_images
        stream = ""
        if self.fs is not None:
            f = self.fs_figures()
            stream = (f"; FS stream K={f['phases']}: {f['starts']} start(s), {f['stream_cycles']:,} engine cycles, "
                      f"{f['steady_cycles_per_image']:,.0f} cycles/image in steady state (layer-parallel bound "
                      f"{f['pipelined_cycles_per_image']:,.0f})")
        return (f"RTL: {n} images x {self.trace.n_steps} steps, {self.simulated_cycles:,} cycles in "
                f"{self.sim_seconds:.2f} s ({self.cycles_per_second / 1e6:.2f} M cycles/s, "
                f"{self.images_per_second:.1f} images/s){stream}; build {self.build_seconds:.1f} s"
                f"{' (cached)' if self.build_cached else ''}")

    def fs_figures(self) -> dict:
        """Throughput of an FS stream: ``stream_cycles`` (the engine's cycles, all starts), ``steady_cycles_per_image``
        (mean interval between consecutive prediction beats of a start: one period of 2K global steps, every
        active layer's work; NaN with one image per start), ``sequential_cycles_per_image`` (mean per-image cycles
        without C_IMAGE: what a layer-sequential engine spends per image), ``pipelined_cycles_per_image``
        (mean over the steady-state periods of Σ_g max_l cycles[g, l]: the bound of an engine with one unit
        per layer), ``period_steps`` = 2K, ``latency_steps`` = L·K."""
        if self.fs is None:
            raise SnnCosimError("fs_figures() is for FS runs")
        from golden.core import cycle_model

        f, trace = self.fs, self.trace
        phases, n_layers = f.phases, trace.n_layers
        intervals, periods = [], []
        for base, count in zip(f.bases.tolist(), f.counts.tolist()):
            intervals += np.diff(f.pred_cycles[base:base + count]).tolist()
            stream = cycle_model.fs_stream_cycles(trace.counter("cycles")[base:base + count], phases)
            per_step = stream.step_cycles.max(axis=1)
            busy = (stream.occupant >= 0).sum(axis=1)
            for p in range(count):
                rows = slice(2 * phases * p, 2 * phases * (p + 1))
                periods.append((int(busy[rows].sum()), int(per_step[rows].sum())))
        full = max(b for b, _ in periods)
        steady = [c for b, c in periods if b == full]
        return {
            "phases": phases, "starts": int(len(f.bases)), "period_steps": 2 * phases,
            "latency_steps": n_layers * phases, "stream_cycles": int(f.cycles.sum()),
            "steady_cycles_per_image": float(np.mean(intervals)) if intervals else float("nan"),
            "sequential_cycles_per_image": float((trace.image_cycles - int(trace.meta.get("c_image", 0))).mean()),
            "pipelined_cycles_per_image": float(np.mean(steady)),
        }


class _Progress:
    """Counts ``D`` lines (FS runs: ``P`` lines) appearing in the harness's trace file (a thread; the simulator
    never waits for it)."""

    def __init__(self, path: Path, total: int, prefix: bytes = b"D ") -> None:
        self.path, self.total, self.prefix = path, total, prefix
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        from tqdm.auto import tqdm

        done, offset, tail = 0, 0, b""
        with tqdm(total=self.total, unit="img", desc="rtl", leave=False) as bar:
            while not self._stop.wait(0.25):
                try:
                    with open(self.path, "rb") as handle:
                        handle.seek(offset)
                        chunk = handle.read()
                except OSError:
                    continue
                offset += len(chunk)
                lines = (tail + chunk).split(b"\n")
                tail = lines.pop()
                new = sum(1 for line in lines if line.startswith(self.prefix))
                if new:
                    done += new
                    bar.update(new)


# ----------------------------------------------------------------------------------------------- one run, step by step
@dataclass(frozen=True)
class RunPlan:
    """What one run streams (:func:`plan_run`): the stimulus the harness reads (``bool [N, T_stim, n_0]``), the
    input spikes the trace records (``[N, T, n_0]``; FS: padded to L·K steps), the images per start and, for FS
    networks, the starts' ``bases``/``counts`` (:func:`cosim.harness.fs_stream_layout`), and the watchdog."""

    fs: bool
    n_images: int
    n_steps: int  # steps per image in the trace (FS: L·K)
    stimulus: np.ndarray
    recorded: np.ndarray
    chunk: int  # images per start; an FS build runs other networks one image per start
    watchdog: int
    phases: int = 0
    bases: np.ndarray | None = None
    counts: np.ndarray | None = None


def plan_run(network: IntegerNetwork, config, spikes: np.ndarray, images_per_start: int | None = None) -> RunPlan:
    """The :class:`RunPlan` of image-major ``spikes`` ``[N, T, n_0]`` (from :func:`_as_input_spikes`)."""
    n_images, n_steps = spikes.shape[0], spikes.shape[1]
    if not network.is_fs:
        if images_per_start is not None:
            raise SnnCosimError("images_per_start applies to FS networks only (input_coding 'fs')")
        return RunPlan(False, n_images, n_steps, spikes, spikes, 1, _watchdog_cycles(config, n_steps))
    stimulus, recorded = _fs_input_spikes(spikes, network)
    phases = int(network.phases)
    chunk = _images_per_start(config, network, images_per_start, n_images)
    bases, counts = _harness.fs_stream_layout(n_images, chunk)
    n_steps = int(network.fs_latency)
    watchdog = _watchdog_cycles(config, 2 * phases * (int(counts.max()) - 1) + n_steps)
    return RunPlan(True, n_images, n_steps, stimulus, recorded, chunk, watchdog, phases, bases, counts)


@dataclass(frozen=True)
class JobFiles:
    """The files of one run in its work directory: what Python writes (``config.hex``, ``stimulus.txt``,
    ``job.json``) and what the harness and cocotb write back (``trace.txt``, ``summary.json``)."""

    work: Path

    @property
    def config(self) -> Path:
        return self.work / "config.hex"

    @property
    def stimulus(self) -> Path:
        return self.work / "stimulus.txt"

    @property
    def job(self) -> Path:
        return self.work / "job.json"

    @property
    def trace(self) -> Path:
        return self.work / "trace.txt"

    @property
    def summary(self) -> Path:
        return self.work / "summary.json"


def write_job_files(work: Path, network: IntegerNetwork, config, engine: Engine, plan: RunPlan) -> JobFiles:
    """Step 1: write the configuration words, the stimulus and ``job.json`` into ``work`` (removing the trace and
    summary of an earlier run there)."""
    from hw.config_image import config_words, write_config_hex

    files = JobFiles(work)
    for stale in (files.trace, files.summary):
        stale.unlink(missing_ok=True)
    write_config_hex(config_words(network, config), files.config, config.cfg_data_bits)
    _harness.write_stimulus_file(plan.stimulus, config.lanes, files.stimulus,
                                 config.hardware_order(0) if config.spatial else None)
    job = {"n_images": plan.n_images, "n_counters": len(COUNTER_NAMES), "counter_bits": config.counter_bits,
           "summary": str(files.summary), "clock": engine.clock}
    if engine.params.fs:
        job |= {"fs": plan.fs, "n_starts": len(plan.bases) if plan.fs else plan.n_images}
    files.job.write_text(json.dumps(job))
    return files


@dataclass
class Launch:
    """What :func:`launch_simulator` gives back: the runner's result (None when the simulation failed, then
    ``failure`` holds the error), the process's wall time and cocotb's ``summary.json`` (``{}`` when missing)."""

    result: _runner.RunResult | None
    failure: _runner.SimulationError | None
    wall_seconds: float
    summary: dict


def launch_simulator(engine: Engine, files: JobFiles, plan: RunPlan, *, waves: bool = False,
                     progress: bool = False, digest_only: bool = False) -> Launch:
    """Step 2: run :mod:`cosim.tb_engine` on the built engine with the job's files (``progress``: a bar counting
    the images the harness finishes; ``digest_only``: the harness writes no R/S lines, only each image's D and H
    lines, docs/spec.md "Per-image digest")."""
    plusargs = [f"+snn_job={files.job}", f"+snn_cfg={files.config}", f"+snn_stim={files.stimulus}",
                f"+snn_trace={files.trace}", f"+snn_max_cycles={plan.watchdog}"]
    if digest_only:
        plusargs.append("+snn_digest_only")
    if engine.params.fs:
        plusargs.append(f"+snn_fs_chunk={plan.chunk}")
    t0 = time.perf_counter()
    failure = None
    bar = _Progress(files.trace, plan.n_images, b"P " if plan.fs else b"D ") if progress else contextlib.nullcontext()
    with bar:
        try:
            result = _runner.run(engine.handle, "cosim.tb_engine", plusargs=plusargs, waves=waves, test_dir=files.work)
        except _runner.SimulationError as exc:
            failure, result = exc, None
    wall = time.perf_counter() - t0
    summary = json.loads(files.summary.read_text()) if files.summary.is_file() else {}
    return Launch(result, failure, wall, summary)


def decode_trace(files: JobFiles, engine: Engine, config, plan: RunPlan) -> _harness.HarnessTrace | None:
    """Step 3: parse the harness's trace text file into golden-form arrays (None when the run wrote none)."""
    if not files.trace.is_file():
        return None
    orders = [config.hardware_order(l) for l in range(1, config.n_layers + 1)] if config.spatial else None
    if plan.fs:
        return _harness.parse_fs_trace_file(files.trace, engine.params, config.layer_sizes, plan.phases, plan.bases,
                                            plan.counts, config.c_image, orders)
    return _harness.parse_trace_file(files.trace, engine.params, config.layer_sizes, plan.n_images, plan.n_steps,
                                     orders)


def cross_check_summary(summary: dict, parsed: _harness.HarnessTrace, fs: bool) -> list[str]:
    """Step 4: every inconsistency between the harness's log and what cocotb read through the handles (an FS run's
    stream totals and prediction beats, else the per-image totals), with the parser's own problems first."""
    return list(parsed.problems) + (_cross_check_fs(summary, parsed) if fs else _cross_check(summary, parsed))


def check_digests(trace: Trace, parsed: _harness.HarnessTrace, config) -> list[str]:
    """The harness's digests (H lines) must be those :mod:`golden.core.digest` computes from the beats it logged: the
    one place where the SystemVerilog and numpy digests are held to each other on every full run. Per image, or,
    for an FS run, per stream (:func:`golden.core.digest.fs_stream_digests`)."""
    from golden.core.digest import fs_stream_digests, image_digests

    orders = [config.hardware_order(l) for l in range(1, config.n_layers + 1)] if config.spatial else None
    widths = (int(config.lanes), int(config.membrane_bits), int(config.counter_bits))
    if parsed.fs is not None:
        streams = parsed.fs
        if streams.digests is None:
            return []
        ours = fs_stream_digests(trace, streams.bases, streams.counts, streams.phases, *widths, orders,
                                 config.layer_sizes)
        theirs, what = streams.digests, [f"stream of image {int(b)}" for b in streams.bases]
    else:
        if parsed.digests is None:
            return []
        ours = image_digests(trace, *widths, orders, config.layer_sizes)
        theirs, what = parsed.digests, [f"image {i}" for i in range(len(ours))]
    bad = np.flatnonzero(ours != theirs)
    if not bad.size:
        return []
    i = int(bad[0])
    return [f"{what[i]}: the harness's digest {int(theirs[i]):016x} is not that of its own trace "
            f"({int(ours[i]):016x}; {bad.size} {'stream' if parsed.fs is not None else 'image'}(s) differ)"]


def _rtl_trace(network: IntegerNetwork, config, engine: Engine, plan: RunPlan,
               parsed: _harness.HarnessTrace) -> Trace:
    meta = {"source": "rtl", "lanes": int(config.lanes), "c_layer": int(config.c_layer),
            "c_image": int(config.c_image), "input_coding": network.input_coding,
            "engine": config.digest(), "verilator": engine.handle.verilator.version_string,
            "network_sha256": network.digest()}
    if plan.fs:
        meta |= {"phases": plan.phases, "skip_periods": int(network.skip_periods), "fs": True,
                 "latency_steps": plan.n_steps, "images_per_start": plan.chunk}
    return Trace(spikes=parsed.spikes, counters=parsed.counters, image_cycles=parsed.image_cycles,
                 predictions=parsed.predictions, membranes=parsed.membranes, input_spikes=plan.recorded, meta=meta)


def _work_directory(work_dir, waves: bool) -> tuple[Path, bool]:
    """``(directory, temporary)``: ``work_dir`` (created), or a new temporary directory, removed after a
    successful run (kept when it failed: the error names the log) unless it holds a waveform."""
    if work_dir is None:
        return Path(tempfile.mkdtemp(prefix="snncosim-rtl-")), not waves
    work = Path(work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    return work, False


def cosimulate(network: IntegerNetwork, input_spikes, *, lanes: int = 8, work_dir: str | os.PathLike | None = None,
               waves: bool = False, progress: bool = False, config=None, engine: Engine | None = None,
               build_dir: str | os.PathLike | None = None, strict: bool = True,
               images_per_start: int | None = None) -> RtlRun:
    """Run ``network`` on the RTL engine for time-major ``input_spikes`` (``bool [T, N, n_in]``, numpy or torch, as
    :class:`golden.simulation.simulate.IntegerSimulator` takes them) and return an :class:`RtlRun` whose ``trace``
    has the golden model's form (membranes always recorded). :class:`RtlSimulator` wraps this as a backend.

    ``config`` (an :class:`hw.config.EngineConfig`) or ``engine`` (from :func:`prepare_engine`) lets several
    networks of one shape share a build; by default ``EngineConfig.for_network(network, lanes)``. ``work_dir``
    keeps the job files, the trace text, the simulator log and (``waves``) ``dump.fst`` / ``dump.vcd``;
    default: a temporary directory, removed afterwards unless the run failed or made a waveform. With
    ``strict`` (default) an inconsistent RTL output (missing or duplicate beats, totals that are not the sum of
    the per-step counters) raises :class:`TraceMismatch`.

    FS networks (``input_coding = "fs"``): ``input_spikes`` are what the golden model takes, ``[T, N, n_in]`` with
    K ≤ T ≤ L·K and no spikes after step K (``golden.simulation.encoding.fs_encode(codes, K, steps=L·K)``); all N
    images stream back to back through the pipeline, ``images_per_start`` (default: as many as the 16-bit step
    counter allows, ``EngineConfig.fs_max_images(K)``) per ``start``. The trace has L·K local steps per image.

    The steps: :func:`plan_run`, :func:`prepare_engine`, :func:`write_job_files`, :func:`launch_simulator`,
    :func:`decode_trace`, :func:`cross_check_summary`."""
    from hw.config import EngineConfig

    network.validate()
    if engine is not None:
        config = engine.config
        if waves and not engine.handle.waves:
            raise SnnCosimError("waves requested but the prepared engine was built without tracing")
    elif config is None:
        config = EngineConfig.for_network(network, lanes=lanes)
    config.check_fits(network)
    plan = plan_run(network, config, _as_input_spikes(input_spikes, network.n_inputs), images_per_start)
    if engine is None:
        engine = prepare_engine(config, waves=waves, build_dir=build_dir)

    work, temporary = _work_directory(work_dir, waves)
    try:
        files = write_job_files(work, network, config, engine, plan)
        launched = launch_simulator(engine, files, plan, waves=waves, progress=progress)
        t1 = time.perf_counter()
        parsed = decode_trace(files, engine, config, plan)
        parse_seconds = time.perf_counter() - t1
        if launched.failure is not None:
            detail = f"; harness: {parsed.error}" if parsed is not None and parsed.error else ""
            raise _runner.SimulationError(f"{launched.failure}{detail}") from None
        assert parsed is not None and launched.result is not None
        problems = cross_check_summary(launched.summary, parsed, plan.fs)
        trace = _rtl_trace(network, config, engine, plan, parsed)
        if not problems:
            problems += check_digests(trace, parsed, config)
        summary = launched.summary
        sim_seconds = float(summary.get("sim_seconds") or launched.wall_seconds)
        cycles = int(summary.get("cycles", 0))
        run = RtlRun(
            trace=trace, wall_seconds=launched.wall_seconds, sim_seconds=sim_seconds, simulated_cycles=cycles,
            cycles_per_second=cycles / sim_seconds if sim_seconds > 0 else 0.0,
            images_per_second=plan.n_images / sim_seconds if sim_seconds > 0 else 0.0,
            build_seconds=engine.handle.seconds, build_cached=engine.handle.cached,
            generate_seconds=engine.generate_seconds, parse_seconds=parse_seconds, config=config, work_dir=work,
            trace_text=files.trace, hardware_totals=parsed.total_counters, harness_cycles=parsed.harness_cycles,
            waves_file=launched.result.waves_file, problems=problems, fs=parsed.fs)
        if problems and strict:
            saved = trace.save(work / "rtl_trace.npz")
            raise TraceMismatch(f"the RTL's own output is inconsistent: {problems[0]}"
                                f"{f' (+{len(problems) - 1} more)' if len(problems) > 1 else ''}; "
                                f"partial trace saved to {saved}")
    except BaseException:
        temporary = False  # keep the evidence
        raise
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)
    if temporary:
        run.work_dir = run.trace_text = None
    return run


class RtlSimulator:
    """The RTL engine under Verilator as a backend of the golden simulators' shape: ``RtlSimulator(network,
    lanes=8).run(input_spikes)`` takes time-major ``bool [T, N, n_in]`` and returns a
    :class:`golden.core.trace.Trace` (membranes always recorded), like
    :meth:`golden.simulation.simulate.IntegerSimulator.run`. The cost figures of the last run (cycles, seconds,
    hardware totals, FS stream reports) are kept in ``last_run`` (an :class:`RtlRun`). The keyword arguments are
    :func:`cosimulate`'s; ``run`` may override ``work_dir`` and ``images_per_start`` per call."""

    def __init__(self, network: IntegerNetwork, *, lanes: int = 8, config=None, engine: Engine | None = None,
                 work_dir: str | os.PathLike | None = None, waves: bool = False, progress: bool = False,
                 build_dir: str | os.PathLike | None = None, strict: bool = True,
                 images_per_start: int | None = None) -> None:
        self.network = network
        self.lanes, self.config, self.engine = lanes, config, engine
        self.work_dir, self.waves, self.progress, self.build_dir = work_dir, waves, progress, build_dir
        self.strict, self.images_per_start = strict, images_per_start
        self.last_run: RtlRun | None = None

    def run(self, input_spikes, *, work_dir: str | os.PathLike | None = None,
            images_per_start: int | None = None) -> Trace:
        self.last_run = cosimulate(
            self.network, input_spikes, lanes=self.lanes, config=self.config, engine=self.engine,
            work_dir=self.work_dir if work_dir is None else work_dir, waves=self.waves, progress=self.progress,
            build_dir=self.build_dir, strict=self.strict,
            images_per_start=self.images_per_start if images_per_start is None else images_per_start)
        return self.last_run.trace


def _cross_check_fs(summary: dict, parsed: _harness.HarnessTrace) -> list[str]:
    """FS runs: the stream totals and the prediction beats cocotb read must be what the harness logged."""
    f = parsed.fs
    return cross_check_fs_streams(summary, f.bases, f.cycles, f.predictions, f.totals, parsed.predictions)


def cross_check_fs_streams(summary: dict, bases: np.ndarray, cycles: np.ndarray, stream_predictions: np.ndarray,
                           totals: np.ndarray, predictions: np.ndarray) -> list[str]:
    """What cocotb read at each FS stream's done and at each prediction beat (``summary``) against what the harness
    logged: per stream ``cycles``, ``stream_predictions`` and ``totals [S, 9]`` (its D line), per image
    ``predictions`` (its P line). Full-trace and digest-only runs alike."""
    problems = []
    bases = np.asarray(bases).tolist()
    images = summary.get("images", [])
    for entry in images:
        base = int(entry["image"])
        if base not in bases:
            problems.append(f"cocotb saw done for a stream starting at image {base}, which was never started")
            continue
        k = bases.index(base)
        for name, logged in (("image_cycles", int(cycles[k])), ("prediction", int(stream_predictions[k]))):
            if int(entry[name]) != logged:
                problems.append(f"stream of image {base}: {name} read through cocotb is {entry[name]} but the "
                                f"harness logged {logged}")
        if list(entry["total_counters"]) != [int(v) for v in totals[k]]:
            problems.append(f"stream of image {base}: total counters read through cocotb differ from the harness's "
                            f"log")
    if summary and len(images) != len(bases):
        problems.append(f"cocotb saw {len(images)} done pulses for {len(bases)} starts")
    beats = summary.get("predictions", [])
    for entry in beats:
        i = int(entry["image"]) + int(entry["pred_image"])
        if not 0 <= i < len(predictions) or int(entry["prediction"]) != int(predictions[i]):
            problems.append(f"image {i}: prediction beat read through cocotb ({entry['prediction']}) differs from "
                            f"the harness's log")
            break
    if summary and len(beats) != len(predictions):
        problems.append(f"cocotb saw {len(beats)} prediction beats for {len(predictions)} images")
    return problems


def _cross_check(summary: dict, parsed: _harness.HarnessTrace) -> list[str]:
    """The totals cocotb read through the handles must be what the harness logged."""
    problems = []
    images = summary.get("images", [])
    for entry in images:
        i = int(entry["image"])
        if not 0 <= i < len(parsed.image_cycles):
            problems.append(f"cocotb saw done for image {i}, beyond the run")
            continue
        for name, logged in (("image_cycles", int(parsed.image_cycles[i])), ("prediction",
                                                                             int(parsed.predictions[i]))):
            if int(entry[name]) != logged:
                problems.append(f"image {i}: {name} read through cocotb is {entry[name]} but the harness "
                                f"logged {logged}")
        if list(entry["total_counters"]) != [int(v) for v in parsed.total_counters[i]]:
            problems.append(f"image {i}: total counters read through cocotb differ from the harness's log")
    if summary and len(images) != len(parsed.image_cycles):
        problems.append(f"cocotb saw {len(images)} done pulses for {len(parsed.image_cycles)} images")
    return problems


# ----------------------------------------------------------------------------------------------- equivalence
def _context(golden: Trace, rtl: Trace, comparison: Comparison) -> list[str]:
    d = comparison.first_difference
    if d is None or d.step is None or d.layer is None:
        return []
    i, s, l = d.image, d.step - 1, d.layer - 1
    lines = [f"context at image {i}, step {d.step}, layer {d.layer}:"]
    g_spk, r_spk = golden.spikes[l][i, s], rtl.spikes[l][i, s]
    lines.append(f"  spiking neurons  golden {np.flatnonzero(g_spk).tolist()[:40]}")
    lines.append(f"                   rtl    {np.flatnonzero(r_spk).tolist()[:40]}")
    if d.neuron is not None and golden.membranes is not None and rtl.membranes is not None:
        j = d.neuron
        lo, hi = max(0, s - 3), min(golden.n_steps, s + 2)
        lines.append(f"  membrane of neuron {j}, steps {lo + 1}..{hi}: golden "
                     f"{golden.membranes[l][i, lo:hi, j].tolist()} rtl {rtl.membranes[l][i, lo:hi, j].tolist()}")
    g_c, r_c = golden.counters[i, s, l], rtl.counters[i, s, l]
    lines.append("  counters " + ", ".join(f"{n} {int(a)}/{int(b)}" for n, a, b in zip(COUNTER_NAMES, g_c, r_c))
                 + "  (golden/rtl)")
    return lines


def check_equivalence(golden: Trace, rtl: Trace, save_dir: str | os.PathLike | None = None, *,
                      strict: bool = False) -> Comparison:
    """SPEC §6 comparison. On a mismatch, and when ``save_dir`` is given, saves ``golden_trace.npz``,
    ``rtl_trace.npz`` and ``mismatch.txt`` (the first difference with its context) there; with ``strict``
    raises :class:`TraceMismatch` (one line: the first difference), else returns the :class:`Comparison`."""
    comparison = compare(golden, rtl)
    if comparison.equivalent:
        return comparison
    where = ""
    if save_dir is not None:
        save = Path(save_dir)
        save.mkdir(parents=True, exist_ok=True)
        golden.save(save / "golden_trace.npz")
        rtl.save(save / "rtl_trace.npz")
        report = [comparison.summary(), *_context(golden, rtl, comparison),
                  f"re-check: snncosim compare {save / 'golden_trace.npz'} {save / 'rtl_trace.npz'}", ""]
        (save / "mismatch.txt").write_text("\n".join(report))
        where = f" (traces and report in {save})"
    if strict:
        raise TraceMismatch(f"{comparison.summary()}{where}")
    return comparison


def compare_files(golden_path: str | os.PathLike, rtl_path: str | os.PathLike) -> Comparison:
    """Compare two saved traces (``snncosim compare GOLDEN RTL``)."""
    return compare(Trace.load(golden_path), Trace.load(rtl_path))
