"""The one helper around cocotb's runner (``cocotb_tools.runner``) for Verilator.

* :func:`build` compiles a set of Verilog sources once and caches the result: the build directory is named after
  a SHA-256 of everything that determines the binary (source contents, top level, flags, Verilator and cocotb
  versions, the Python that cocotb embeds, its path resolved). A second call with the same key — in this process,
  in another pytest worker or in a later session — returns the finished build without running Verilator. Builds
  of the same key are serialised with a lock file, so concurrent callers never build into the same directory at
  once.
* :func:`run` runs a cocotb test module against a build in a separate simulator process and raises
  :class:`SimulationError` (one line: the failure message of the cocotb test) when the test fails or the
  simulator dies. It never calls ``sys.exit``, also under pytest (where cocotb's runner would).

Everything cocotb-specific lives here, so a later switch to cocotb's pytest plugin touches only this file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from golden.core.errors import SnnCosimError, ToolchainError

from .toolchain import VerilatorInfo, compiler_version, ensure_verilator, fst_supported

CACHE_FORMAT = 1  # bump to invalidate every cached build
STAMP = "snncosim-build.json"
_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


class BuildError(ToolchainError):
    """Verilator or the C++ compiler rejected a design."""


class SimulationError(SnnCosimError):
    """The cocotb test failed, or the simulator process died."""


@dataclass(frozen=True)
class BuildHandle:
    """A finished Verilator build. ``seconds`` is the time the build took when it was made (0 if it was reused
    in this call: see ``cached``)."""

    build_dir: Path
    toplevel: str
    key: str
    waves: str | None  # None, "fst" or "vcd"
    timing: bool
    cached: bool
    seconds: float
    verilator: VerilatorInfo

    @property
    def binary(self) -> Path:
        return self.build_dir / self.toplevel


@dataclass
class RunResult:
    """Outcome of one :func:`run`: the cocotb results file, the simulator log, test counts and wall time."""

    results_xml: Path
    log_file: Path
    test_dir: Path
    tests: int
    failed: int
    wall_seconds: float
    failures: list[str] = field(default_factory=list)
    waves_file: Path | None = None


def _hash_inputs(sources: Sequence[Path], toplevel: str, flags: Sequence[str], info: VerilatorInfo, *,
                 compiler: bool = False) -> str:
    """The cache key of a build. The compiler (``$CXX`` and its version) enters only with ``compiler`` (the saved
    run-time objects, which are linked into later builds): a finished simulator binary does not depend on which
    compiler made it, and running one must not need a compiler."""
    import cocotb

    digest = hashlib.sha256()

    def feed(label: str, data: bytes) -> None:
        digest.update(label.encode() + b"\0" + len(data).to_bytes(8, "little") + data)

    feed("format", str(CACHE_FORMAT).encode())
    feed("toplevel", toplevel.encode())
    feed("flags", "\0".join(flags).encode())
    feed("verilator", f"{info.version_string} {info.path} {info.make_fixes}".encode())
    # the interpreter as a file, not as spelled (…/python3 and …/python of one install are one key)
    feed("cocotb", f"{cocotb.__version__} {os.path.realpath(sys.executable)} {sys.version}".encode())
    feed("cxxflags", os.environ.get("CXXFLAGS", "").encode())
    if compiler:
        feed("cxx", f"{os.environ.get('CXX', '')}|{compiler_version()}".encode())
    for source in sources:
        feed("source-name", source.name.encode())
        feed("source", source.read_bytes())
    return digest.hexdigest()


@contextlib.contextmanager
def _locked(path: Path):
    """Exclusive lock against other threads (by key) and other processes (flock on ``path``)."""
    with _thread_locks_guard:
        tlock = _thread_locks.setdefault(str(path), threading.Lock())
    with tlock:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _first_error(log_file: Path, limit: int = 300) -> str:
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return "no log"
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("%Error") or " error: " in stripped or stripped.startswith("error:"):
            return stripped[:limit]
    return (lines[-1].strip() if lines else "empty log")[:limit]


def _runtime_files(runtime: Path) -> list[str]:
    """Verilator's compiled run-time library objects (``verilated*.o``, identical for every design built with
    the same Verilator and flags) saved by an earlier build: copied into a new build after Verilator has run and
    before make (so they are newer than ``Vtop.mk``, which they depend on), they are not compiled again. They
    are about half of a small design's build time."""
    if not runtime.is_dir():
        return []
    return sorted(str(path) for path in runtime.iterdir() if path.suffix in (".o", ".d"))


def _save_runtime(target: Path, runtime: Path) -> None:
    if runtime.is_dir():
        return
    tmp = runtime.with_name(f"{runtime.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for path in target.glob("verilated*"):
        if path.suffix in (".o", ".d"):
            shutil.copy2(path, tmp / path.name)
    try:
        os.replace(tmp, runtime)
    except OSError:  # another process saved it first
        shutil.rmtree(tmp, ignore_errors=True)


# Verilator options of every build, chosen by measurement (scripts/bench_scale.py --verilator-options): its DFG pass
# rewrites processes like ``x = 0; if (enable) x = …`` into multiplexers that are evaluated in every cycle, which
# undoes the neuron lanes' gating (hw.gated): without it the MNIST engine simulates ~30 % fewer instructions per
# cycle (callgrind), and even ungated designs ran ~8 % fewer.
OPT_FLAGS = ("-fno-dfg",)

# make variables for the C++ build: -O2 for the per-cycle code and the run-time library (the simulation runs
# ~1.7x faster than with verilated.mk's -Os); the run-once initialisation code (OPT_SLOW) stays unoptimised.
_MAKE_ARGS = ("OPT_FAST=-O2", "OPT_GLOBAL=-O2")


def run_process_group(cmd: Sequence[str], *, cwd=None, env=None, stdout=None, stderr=None,
                      grace_seconds: float = 2.0) -> int:
    """Run ``cmd`` in a new process group (its own session) and return its exit status. Whatever interrupts the
    wait — Ctrl-C, or SIGTERM/SIGHUP turned into an exception by the command line — ends the **whole group**
    (SIGTERM, then SIGKILL after ``grace_seconds``) before it propagates, so no simulator or compiler outlives
    snncosim. The child also gets SIGKILL if snncosim itself dies without cleaning up (``PR_SET_PDEATHSIG``)."""
    process = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=stdout, stderr=stderr, start_new_session=True,
                               preexec_fn=_die_with_parent)
    with _running_guard:
        _running.add(process)
    try:
        return process.wait()
    except BaseException:
        _kill_group(process, grace_seconds)
        raise
    finally:
        with _running_guard:
            _running.discard(process)


_running: set[subprocess.Popen] = set()
_running_guard = threading.Lock()


def stop_all_process_groups(grace_seconds: float = 2.0) -> None:
    """End the process group of every command :func:`run_process_group` is running, in any thread (an interrupt
    reaches the main thread only; the simulators of other threads must not outlive it)."""
    with _running_guard:
        processes = list(_running)
    for process in processes:
        _kill_group(process, grace_seconds)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1 (Linux)
    except Exception:  # noqa: BLE001 - not Linux: the process-group kill still applies
        pass


def _kill_group(process: subprocess.Popen, grace_seconds: float) -> None:
    for sig, wait in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # members that outlived the leader
        os.killpg(process.pid, signal.SIGKILL)


def _grouped_verilator():
    """cocotb's Verilator runner whose commands (Verilator, make, the simulator) run through
    :func:`run_process_group` (this overrides the runner's command executor, the one place where it starts
    processes)."""
    from cocotb_tools.runner import Verilator

    class _GroupedVerilator(Verilator):
        def _execute_cmds(self, cmds, cwd, stdout=None):
            for cmd in cmds:
                code = run_process_group(cmd, cwd=cwd, env=self.env, stdout=stdout,
                                         stderr=None if stdout is None else subprocess.STDOUT)
                if code != 0:
                    raise RuntimeError(f"Command failed with return code: {code}")

    return _GroupedVerilator


def _verilator_runner(public: str, runtime_files: Sequence[str], main: Path | None = None):
    """cocotb's Verilator runner with four changes to its build commands:

    * visibility: cocotb's runner makes every signal of the design readable and writable through VPI
      (``--public-flat-rw``), which stops Verilator from optimising the design and re-evaluates all logic fed by
      those signals at every time slot. ``public="top"`` makes only the top module's signals visible, read-only
      (a ``public_flat_rd`` control file): the simulation runs ~1.7x faster. ``"top-rw"`` makes them writable
      too (``--public-depth 1``), ``"all"`` keeps cocotb's default;
    * saved run-time objects are copied in between the Verilator and the make step;
    * make gets :data:`_MAKE_ARGS`;
    * ``main``, if given, replaces cocotb's simulation main (``verilator.cpp``; e.g. cosim/hdl/clock_main.cpp,
      which also makes the clock)."""
    class _Runner(_grouped_verilator()):
        def _build_command(self):
            commands = [list(command) for command in super()._build_command()]
            if public != "all":
                commands[0] = [arg for arg in commands[0] if arg != "--public-flat-rw"]
            if public == "top-rw":
                commands[0][1:1] = ["--public-depth", "1"]
            elif public == "top":
                vlt = Path(self.build_dir) / "public.vlt"
                vlt.write_text(f'`verilator_config\npublic_flat_rd -module "{self.hdl_toplevel}" -var "*"\n')
                commands[0].append(str(vlt))
            if main is not None:
                mains = [k for k, arg in enumerate(commands[0]) if Path(arg).name == "verilator.cpp"]
                if len(mains) != 1:
                    raise BuildError("cannot find cocotb's verilator.cpp in its Verilator command")
                commands[0][mains[0]] = str(main)
            commands[-1] += list(_MAKE_ARGS)
            if runtime_files:
                commands.insert(1, ["cp", *runtime_files, str(self.build_dir)])
            return commands

    return _Runner()


def build(verilog_sources: Iterable[str | os.PathLike], toplevel: str, build_dir: str | os.PathLike, *,
          timing: bool = True, waves: bool | str = False, extra_args: Sequence[str] = (),
          timescale: tuple[str, str] = ("1ns", "1ps"), public: str = "top",
          main: str | os.PathLike | None = None) -> BuildHandle:
    """Build ``verilog_sources`` with ``toplevel`` as top module into ``build_dir/<toplevel>-<key>``; reuse an
    earlier build with the same key.

    ``waves`` adds tracing (a separate cache entry): ``"fst"``, ``"vcd"``, or ``True`` for FST where its
    libraries are installed (:func:`cosim.toolchain.fst_supported`), else VCD. ``public`` is ``"top"`` (cocotb can
    read the top module's signals only: fastest), ``"top-rw"`` (and write them) or ``"all"`` (every signal,
    cocotb's default). ``main``: a C++ simulation main to use instead of cocotb's (part of the key). Raises
    :class:`BuildError` with the first compiler error when the build fails."""
    if public not in ("top", "top-rw", "all"):
        raise SnnCosimError(f"public must be 'top', 'top-rw' or 'all', got {public!r}")
    info = ensure_verilator(build_tools=False)
    sources = [Path(s).resolve() for s in verilog_sources]
    for source in sources:
        if not source.is_file():
            raise SnnCosimError(f"{source}: no such Verilog source")
    flags = ["-Wno-fatal", "-Wno-lint", "-Wno-style", *OPT_FLAGS]
    if timing:
        flags.append("--timing")
    if waves is True:
        waves = "fst" if fst_supported() else "vcd"
    elif not waves:
        waves = None
    elif waves not in ("fst", "vcd"):
        raise SnnCosimError(f"waves must be a bool, 'fst' or 'vcd', got {waves!r}")
    if waves == "fst":
        flags += ["--trace-fst", "--trace-structs"]
    elif waves == "vcd":
        flags += ["--trace-structs"]
    flags += list(extra_args)
    flags_for_key = flags + [f"timescale={timescale}", f"waves={waves}", f"public={public}", *_MAKE_ARGS]
    main = Path(main).resolve() if main is not None else None
    if main is not None and not main.is_file():
        raise SnnCosimError(f"{main}: no such simulation main")
    key = _hash_inputs(sources + ([main] if main is not None else []), toplevel, flags_for_key, info)
    root = Path(build_dir).resolve()
    target = root / f"{toplevel}-{key[:16]}"
    stamp = target / STAMP

    def finished() -> bool:
        try:
            return json.loads(stamp.read_text()).get("key") == key and (target / toplevel).is_file()
        except (OSError, ValueError):
            return False

    if finished():
        return BuildHandle(target, toplevel, key, waves, timing, True, 0.0, info)
    with _locked(root / f".{toplevel}-{key[:16]}.lock"):
        if finished():  # another process or thread built it while we waited
            return BuildHandle(target, toplevel, key, waves, timing, True, 0.0, info)
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        log_file = target / "build.log"
        ensure_verilator(build_tools=True)  # a build is needed: now the compiler, make and perl must be there
        runtime_key = _hash_inputs([], "runtime", [f"waves={waves}", *flags, *_MAKE_ARGS], info, compiler=True)
        runtime = root / ".runtime" / runtime_key[:16]
        runner = _verilator_runner(public, _runtime_files(runtime), main)
        runner.log.setLevel("WARNING")
        t0 = time.perf_counter()
        try:
            runner.build(sources=[str(s) for s in sources], hdl_toplevel=toplevel, build_dir=str(target),
                         build_args=flags, waves=waves is not None, timescale=timescale, always=True,
                         log_file=str(log_file))
        except (RuntimeError, SystemExit):
            raise BuildError(f"Verilator build of {toplevel} failed: {_first_error(log_file)} "
                             f"(full log: {log_file})") from None
        seconds = time.perf_counter() - t0
        if not (target / toplevel).is_file():
            raise BuildError(f"Verilator build of {toplevel} produced no binary (full log: {log_file})")
        _save_runtime(target, runtime)
        stamp.write_text(json.dumps({"key": key, "toplevel": toplevel, "flags": flags, "seconds": seconds,
                                     "verilator": info.describe(),
                                     "sources": [str(s) for s in sources]}, indent=1))
        return BuildHandle(target, toplevel, key, waves, timing, False, seconds, info)


def _read_results(results_xml: Path) -> tuple[int, int, list[str]]:
    tree = ElementTree.parse(results_xml)
    tests = failed = 0
    failures: list[str] = []
    for suite in tree.getroot().iter("testsuite"):
        for case in suite.iter("testcase"):
            tests += 1
            bad = [child for child in case if child.tag in ("failure", "error")]
            if bad:
                failed += 1
                message = (bad[0].get("message") or (bad[0].text or "").strip() or "failed").strip()
                # the first line only: pytest-style assertion rewriting appends a long explanation
                failures.append(f"{case.get('name')}: {message.splitlines()[0] if message else 'failed'}")
    return tests, failed, failures


def run(handle: BuildHandle, test_module: str = "cosim.tb_engine", *, extra_env: Mapping[str, str] | None = None,
        plusargs: Sequence[str] = (), waves: bool = False, test_dir: str | os.PathLike | None = None,
        testcase: str | None = None, seed: int | None = 1) -> RunResult:
    """Run the cocotb tests of ``test_module`` against ``handle`` in ``test_dir`` (default: a ``run`` folder in
    the build). Raises :class:`SimulationError` with the first failure message when a test fails or the
    simulator terminates abnormally; returns a :class:`RunResult` otherwise."""
    ensure_verilator(build_tools=False)
    if waves and not handle.waves:
        raise SnnCosimError("waves requested but the build has no tracing; build(..., waves=True)")
    if test_dir is None:  # a fresh folder per run: concurrent runs of one build must not share files
        test_dir = Path(tempfile.mkdtemp(prefix="run-", dir=handle.build_dir))
    test_dir = Path(test_dir).resolve()
    test_dir.mkdir(parents=True, exist_ok=True)
    results_xml = test_dir / "results.xml"
    log_file = test_dir / "sim.log"
    waves_file = test_dir / f"dump.{handle.waves}" if waves else None
    for stale in (results_xml, waves_file):
        if stale is not None:
            with contextlib.suppress(OSError):
                stale.unlink()
    runner = _grouped_verilator()()
    runner.log.setLevel("WARNING")
    env = {"COCOTB_REDUCED_LOG_FMT": "1", "COCOTB_ANSI_OUTPUT": "0"}
    env.update(extra_env or {})
    t0 = time.perf_counter()
    aborted = None
    try:
        runner.test(test_module=test_module, hdl_toplevel=handle.toplevel, hdl_toplevel_lang="verilog",
                    build_dir=str(handle.build_dir), test_dir=str(test_dir), plusargs=list(plusargs),
                    extra_env=env, waves=bool(waves), results_xml=str(results_xml), log_file=str(log_file),
                    testcase=testcase, seed=seed)
    except SystemExit as exc:  # cocotb's runner exits on failures under pytest, and on a crashed simulator
        aborted = f"simulator exit status {exc.code}"
    except RuntimeError as exc:
        aborted = str(exc)
    wall = time.perf_counter() - t0
    if not results_xml.is_file():
        raise SimulationError(f"simulation of {handle.toplevel} terminated abnormally ({aborted or 'no results'}): "
                              f"{_first_error(log_file)} (log: {log_file})")
    tests, failed, failures = _read_results(results_xml)
    if failed or tests == 0:
        first = failures[0] if failures else "no cocotb test ran"
        first = " ".join(first.split())
        if len(first) > 600:
            first = first[:600] + "..."
        raise SimulationError(f"cocotb test failed: {first} (log: {log_file})")
    if waves_file is not None and not waves_file.is_file():
        waves_file = None
    return RunResult(results_xml, log_file, test_dir, tests, failed, wall, failures, waves_file)
