"""pytest plugin (entry point ``pytest11``: ``snncosim``): check your own integer network against the RTL in a test.

::

    def test_my_network_matches_the_rtl(rtl_equivalence):
        rtl_equivalence.check("my_net.snn", input_spikes)          # bool [T, N, n_in], numpy or torch

``rtl_equivalence.check(network, input_spikes)`` runs the golden integer model
(:class:`golden.simulation.simulate.IntegerSimulator`) and the RTL engine under Verilator
(:func:`cosim.session.cosimulate`) on the same time-major input spikes, compares the traces (SPEC §6: spikes,
membranes, the nine counters, cycles, predictions) and, on a mismatch, fails the test with an
:class:`RtlMismatch` (an ``AssertionError``) whose message names the first divergence — image, step, layer,
neuron (or counter), golden value and RTL value — with its context and the directory where both traces and
``mismatch.txt`` were saved. Verilator builds are made once per engine configuration per session and cached
across sessions under the build directory (``--snncosim-build-dir``). docs/pytest-plugin.md has a complete
example.

pytest imports this module in every run of anyone who installed snncosim, so it imports nothing heavy at module
level: torch, Amaranth and cocotb are imported only when a test uses the fixture.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BUILD_DIR_ENV = "SNNCOSIM_BUILD_DIR"  # the same variable as cosim.session.BUILD_DIR_ENV (not imported: cheap)
DEFAULT_LANES = 8


class RtlMismatch(AssertionError):
    """The RTL differs from the golden model. ``difference`` is the first
    :class:`golden.core.trace.Difference` (image, step, layer, neuron, quantity, golden, rtl), ``comparison`` the
    whole :class:`golden.core.trace.Comparison`, ``save_dir`` where ``golden_trace.npz``, ``rtl_trace.npz`` and
    ``mismatch.txt`` are."""

    def __init__(self, message: str, comparison=None, save_dir: Path | None = None) -> None:
        super().__init__(message)
        self.comparison = comparison
        self.difference = None if comparison is None else comparison.first_difference
        self.save_dir = save_dir


# ----------------------------------------------------------------------------------------------- options
def pytest_addoption(parser) -> None:
    group = parser.getgroup("snncosim", "snncosim RTL co-simulation (the rtl_equivalence fixture)")
    group.addoption("--snncosim-build-dir", dest="snncosim_build_dir", default=None, metavar="DIR",
                    help=f"where Verilator builds are cached across sessions (default: ${BUILD_DIR_ENV}, else the "
                         f"ini key snncosim_build_dir, else <rootdir>/.snncosim/build)")
    group.addoption("--snncosim-lanes", dest="snncosim_lanes", type=int, default=None, metavar="P",
                    help=f"engine lanes P when a check does not pass lanes= (default {DEFAULT_LANES})")
    group.addoption("--snncosim-waves", dest="snncosim_waves", action="store_true", default=None,
                    help="build with tracing and keep a waveform (dump.fst / dump.vcd) of every RTL run")
    group.addoption("--snncosim-keep", dest="snncosim_keep", action="store_true", default=None,
                    help="keep every RTL work directory under the test's tmp_path (default: only failed ones)")
    parser.addini("snncosim_build_dir", "snncosim: Verilator build cache directory (relative to the rootdir)",
                  default="")
    parser.addini("snncosim_lanes", "snncosim: default engine lanes P", default=str(DEFAULT_LANES))
    parser.addini("snncosim_waves", "snncosim: keep waveforms of RTL runs", type="bool", default=False)
    parser.addini("snncosim_keep", "snncosim: keep every RTL work directory", type="bool", default=False)


@dataclass(frozen=True)
class Options:
    """The plugin's settings: command line, else environment (build directory only), else ini, else default."""

    build_dir: Path
    lanes: int
    waves: bool
    keep: bool

    @classmethod
    def from_config(cls, config) -> "Options":
        build = config.getoption("snncosim_build_dir")
        if build is None:
            build = os.environ.get(BUILD_DIR_ENV) or None
        if build is None:
            ini = config.getini("snncosim_build_dir")
            build = config.rootpath / ini if ini else config.rootpath / ".snncosim" / "build"
        lanes = config.getoption("snncosim_lanes")
        if lanes is None:
            try:
                lanes = int(config.getini("snncosim_lanes"))
            except ValueError:
                raise pytest.UsageError(f"snncosim_lanes must be an integer, got {config.getini('snncosim_lanes')!r}")
        if lanes < 1:
            raise pytest.UsageError(f"snncosim lanes must be at least 1, got {lanes}")
        waves = config.getoption("snncosim_waves")
        keep = config.getoption("snncosim_keep")
        return cls(Path(build).expanduser().resolve(), int(lanes),
                   bool(config.getini("snncosim_waves") if waves is None else waves),
                   bool(config.getini("snncosim_keep") if keep is None else keep))


@dataclass
class Stats:
    """What the session co-simulated (printed in pytest's terminal summary)."""

    checks: int = 0
    images: int = 0
    mismatches: int = 0
    rtl_seconds: float = 0.0
    builds: dict = field(default_factory=dict)  # engine key -> (cached on disk, build seconds)
    reuses: int = 0  # checks that found their engine already prepared in this session


_STATS = pytest.StashKey[Stats]()


def _stats(config) -> Stats:
    if _STATS not in config.stash:
        config.stash[_STATS] = Stats()
    return config.stash[_STATS]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    stats = config.stash.get(_STATS, None)
    if stats is None or not stats.checks:
        return
    cached = sum(1 for disk, _ in stats.builds.values() if disk)
    built = len(stats.builds) - cached
    seconds = sum(s for disk, s in stats.builds.values() if not disk)
    terminalreporter.write_sep("-", "snncosim")
    terminalreporter.write_line(
        f"snncosim: {stats.checks} check(s), {stats.images} image(s) co-simulated on the RTL in "
        f"{stats.rtl_seconds:.1f} s, {stats.mismatches} mismatch(es); engines: {len(stats.builds)} "
        f"({cached} from the build cache, {built} built{f' in {seconds:.1f} s' if built else ''}), "
        f"{stats.reuses} reuse(s) in this session; build cache {Options.from_config(config).build_dir}")


# ----------------------------------------------------------------------------------------------- fixtures
class EngineCache:
    """One prepared engine (:func:`cosim.session.prepare_engine`) per (engine configuration, waves) for the whole
    session; the builds themselves are cached on disk by content under ``options.build_dir``."""

    def __init__(self, options: Options, stats: Stats) -> None:
        self.options, self.stats = options, stats
        self._engines: dict = {}

    def get(self, config, *, waves: bool | None = None):
        waves = self.options.waves if waves is None else bool(waves)
        key = (config, waves)
        if key in self._engines:
            self.stats.reuses += 1
            return self._engines[key]
        from cosim.session import prepare_engine
        from cosim.toolchain import ensure_verilator

        ensure_verilator()
        self.options.build_dir.mkdir(parents=True, exist_ok=True)
        engine = prepare_engine(config, waves=waves, build_dir=self.options.build_dir)
        self._engines[key] = engine
        self.stats.builds[key] = (bool(engine.handle.cached), float(engine.handle.seconds))
        return engine


@pytest.fixture(scope="session")
def snncosim_options(pytestconfig) -> Options:
    """The plugin's settings (:class:`Options`: ``build_dir``, ``lanes``, ``waves``, ``keep``)."""
    return Options.from_config(pytestconfig)


@pytest.fixture(scope="session")
def snncosim_engines(pytestconfig, snncosim_options) -> EngineCache:
    """Session-wide cache of prepared RTL engines (:class:`EngineCache`); ``.get(engine_config)``."""
    return EngineCache(snncosim_options, _stats(pytestconfig))


@dataclass
class CheckResult:
    """An equivalent check: the :class:`golden.core.trace.Comparison`, the golden trace and the RTL run
    (:class:`cosim.session.RtlRun`, its trace in ``rtl.trace``)."""

    comparison: object
    golden: object
    rtl: object
    work_dir: Path

    @property
    def equivalent(self) -> bool:
        return bool(self.comparison.equivalent)

    def summary(self) -> str:
        return f"{self.comparison.summary()}; {self.rtl.summary()}"


class RtlEquivalence:
    """What the ``rtl_equivalence`` fixture gives a test (one per test; engines are shared by the session)."""

    def __init__(self, options: Options, engines: EngineCache, stats: Stats, tmp_path: Path) -> None:
        self.options, self.engines, self.stats, self.tmp_path = options, engines, stats, tmp_path
        self._runs = 0

    @staticmethod
    def network(network):
        """``network`` itself (an :class:`golden.core.network.IntegerNetwork`) or the network directory (``.snn``)
        it names, loaded."""
        from golden.core.network import IntegerNetwork

        if isinstance(network, IntegerNetwork):
            return network
        if isinstance(network, (str, os.PathLike)):
            return IntegerNetwork.load(network)
        raise TypeError(f"rtl_equivalence: network must be an IntegerNetwork or the path of a network directory "
                        f"(.snn), got {type(network).__name__}")

    def config_for(self, *networks, lanes: int | None = None, **overrides):
        """One :class:`hw.config.EngineConfig` for several networks of one shape (IF/LIF variants of one
        conversion, ...): pass it as ``check(..., config=...)`` and they share one Verilator build
        (:func:`cosim.session.config_for_networks`)."""
        from cosim.session import config_for_networks

        return config_for_networks([self.network(n) for n in networks],
                                   lanes=self.options.lanes if lanes is None else lanes, **overrides)

    def check(self, network, input_spikes, *, lanes: int | None = None, config=None,
              images_per_start: int | None = None) -> CheckResult:
        """Run ``network`` (an ``IntegerNetwork`` or a ``.snn`` directory) on the golden model and on the RTL with
        the time-major input spikes ``bool [T, N, n_in]`` (numpy or torch; FS networks: K ≤ T ≤ L·K, as the golden
        model takes them) and fail the test with :class:`RtlMismatch` unless both traces are identical. ``lanes``
        (default ``--snncosim-lanes``) sizes the engine unless ``config`` (an ``EngineConfig``, e.g. from
        :meth:`config_for`) is given. Returns a :class:`CheckResult`."""
        __tracebackhide__ = True
        from cosim.session import check_equivalence, cosimulate, golden_reference
        from hw.config import EngineConfig

        net = self.network(network)
        if config is None:
            config = EngineConfig.for_network(net, lanes=self.options.lanes if lanes is None else lanes)
        elif lanes is not None and lanes != config.lanes:
            raise ValueError(f"rtl_equivalence.check: lanes={lanes} but the config has lanes={config.lanes}")
        engine = self.engines.get(config)
        self._runs += 1
        work = self.tmp_path / f"snncosim-{self._runs}"
        t0 = time.perf_counter()
        rtl = cosimulate(net, input_spikes, engine=engine, work_dir=work / "rtl", waves=self.options.waves,
                         images_per_start=images_per_start)
        self.stats.rtl_seconds += time.perf_counter() - t0
        self.stats.checks += 1
        self.stats.images += rtl.trace.n_images
        golden = golden_reference(net, input_spikes, lanes=config.lanes)
        comparison = check_equivalence(golden, rtl.trace, save_dir=work)
        if not comparison.equivalent:
            self.stats.mismatches += 1
            raise RtlMismatch(mismatch_message(comparison, golden, rtl.trace, work), comparison, work)
        if not (self.options.keep or self.options.waves):
            import shutil

            shutil.rmtree(work / "rtl", ignore_errors=True)
            if work.is_dir() and not any(work.iterdir()):
                work.rmdir()
        return CheckResult(comparison, golden, rtl, work)

    def check_codes(self, network, codes, steps: int, *, seed: int = 0, max_rate: float = 1.0,
                    lanes: int | None = None, config=None) -> CheckResult:
        """:meth:`check` with the input spikes made from integer codes ``[N, ...]`` by the network's own input
        coding: rate (:func:`golden.simulation.encoding.rate_encode` with ``seed`` and ``max_rate``, ``steps``
        steps) or weighted (:func:`~golden.simulation.encoding.weighted_encode`, K = the network's phases). Other
        codings: make the spikes yourself and call :meth:`check`."""
        __tracebackhide__ = True
        from golden.simulation import encoding

        net = self.network(network)
        if net.input_coding == "rate":
            spikes = encoding.rate_encode(codes, steps, max_rate=max_rate, seed=seed, input_bits=net.input_bits)
        elif net.input_coding == "weighted":
            spikes = encoding.weighted_encode(codes, steps, int(net.phases))
        else:
            raise ValueError(f"rtl_equivalence.check_codes encodes rate and weighted inputs only; this network's "
                             f"input coding is {net.input_coding!r}: pass input spikes to check() (e.g. "
                             f"golden.simulation.encoding.fs_encode for 'fs')")
        return self.check(net, spikes, lanes=lanes, config=config)


def mismatch_message(comparison, golden, rtl, save_dir: Path) -> str:
    """The failure message: the first divergence on the first line, then its context (spiking neurons, the
    neuron's membrane over neighbouring steps, the step's counters) and where the traces are."""
    from cosim.session import _context

    d = comparison.first_difference
    head = (f"RTL differs from the golden model at {d} "
            f"({comparison.n_images} images x {comparison.n_steps} steps x {comparison.n_layers} layers)")
    lines = [head, *_context(golden, rtl, comparison),
             f"traces and report saved in {save_dir} (golden_trace.npz, rtl_trace.npz, mismatch.txt); "
             f"re-check: snncosim compare {save_dir / 'golden_trace.npz'} {save_dir / 'rtl_trace.npz'}"]
    return "\n".join(lines)


@pytest.fixture
def rtl_equivalence(snncosim_options, snncosim_engines, pytestconfig, tmp_path) -> RtlEquivalence:
    """Check a network against the RTL: ``rtl_equivalence.check(network, input_spikes)`` (network: an
    ``IntegerNetwork`` or a ``.snn`` directory; spikes: ``bool [T, N, n_in]``) fails the test with the first
    divergence (image, step, layer, neuron, golden vs RTL value); ``check_codes(network, codes, steps, seed=0)``
    encodes integer codes first (rate or weighted coding). Builds are shared by the session and cached across sessions."""
    return RtlEquivalence(snncosim_options, snncosim_engines, _stats(pytestconfig), tmp_path)
