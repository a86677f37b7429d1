"""The cocotb test module that runs inside the simulator process (``cosim.runner.run(handle, "cosim.tb_engine")``).

The harness ``tb_top`` (``hdl/harness.sv.tmpl``) makes the clock, streams the configuration and the input spikes
and writes the trace file itself, so this test wakes up only once per image (``done``) and once at the end
(``all_done``): Python is never on the per-cycle path. At each ``done`` the :class:`DoneMonitor` reads the
engine's hardware counters (``total_counters``, ``image_cycles``, ``prediction``) through cocotb handles; the
session cross-checks them with the trace file.

The job comes in as the plusarg ``+snn_job=PATH`` (a JSON file written by :mod:`cosim.session`):
``{"n_images": N, "n_counters": 9, "counter_bits": W, "summary": PATH}``, on FS builds also ``"fs"`` (an FS
image stream) and ``"n_starts"`` (how many ``done`` pulses to expect). The test writes the summary JSON (per-start
totals as read through the handles, simulated cycles, wall time) to ``summary``.

FS streams (docs/architecture.md, "FS-neurons"): one ``start`` streams many images and ``done`` comes once per
start, with the stream's totals; a :class:`PredictionMonitor` wakes at every ``pred_valid`` beat (once per image)
and records ``pred_image`` and ``prediction``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

# kept in step with cosim.harness.ERROR_MESSAGES (that module imports numpy; this one stays light)
HARNESS_ERRORS = {
    1: "the harness could not open its job files",
    2: "the stimulus file has a bad header",
    3: "the stimulus file ended before the engine had taken every input word",
    4: "an image did not finish within the watchdog limit (the engine hangs)",
    5: "the engine signalled done before it had taken every input word of the image",
}


def _uint(handle) -> int:
    value = handle.value
    to_unsigned = getattr(value, "to_unsigned", None)
    return int(to_unsigned()) if to_unsigned is not None else int(value)


def _fields(value: int, bits: int, count: int) -> list[int]:
    mask = (1 << bits) - 1
    return [(value >> (k * bits)) & mask for k in range(count)]


class DoneMonitor:
    """Wakes at every rising edge of the engine's ``done`` and records that image's hardware totals."""

    def __init__(self, dut, n_counters: int, counter_bits: int) -> None:
        self.dut = dut
        self.n_counters = n_counters
        self.counter_bits = counter_bits
        self.images: list[dict] = []

    async def run(self) -> None:
        dut = self.dut
        while True:
            await RisingEdge(dut.done)
            await ReadOnly()
            self.images.append({
                "image": _uint(dut.images_done),
                "image_cycles": _uint(dut.image_cycles),
                "prediction": _uint(dut.prediction),
                "total_counters": _fields(_uint(dut.total_counters), self.counter_bits, self.n_counters),
            })


class PredictionMonitor:
    """FS streams: wakes at every rising edge of ``pred_valid`` and records that image's prediction beat."""

    def __init__(self, dut) -> None:
        self.dut = dut
        self.beats: list[dict] = []

    async def run(self) -> None:
        dut = self.dut
        while True:
            await RisingEdge(dut.pred_valid)
            await ReadOnly()
            self.beats.append({"image": _uint(dut.images_done), "pred_image": _uint(dut.pred_image),
                               "prediction": _uint(dut.prediction)})


class Job:
    """The job description written by the session."""

    def __init__(self) -> None:
        path = cocotb.plusargs.get("snn_job")
        if not path:
            raise RuntimeError("no +snn_job=PATH plusarg: run this module through cosim.session")
        data = json.loads(Path(str(path)).read_text())
        self.n_images = int(data["n_images"])
        self.n_counters = int(data["n_counters"])
        self.counter_bits = int(data["counter_bits"])
        self.summary = Path(data["summary"])
        self.fs = bool(data.get("fs", False))
        self.n_starts = int(data.get("n_starts", self.n_images))
        self.clock = str(data.get("clock", "verilog"))  # "gpi": the harness has no clock, start cocotb's


@cocotb.test()
async def run_images(dut) -> None:
    """Run every image of the job; fail with the harness's error or a missing ``done``."""
    job = Job()
    monitor = DoneMonitor(dut, job.n_counters, job.counter_bits)
    task = cocotb.start_soon(monitor.run())
    predictions = PredictionMonitor(dut) if job.fs else None
    pred_task = cocotb.start_soon(predictions.run()) if predictions is not None else None
    if job.clock == "gpi":  # benchmarks only (scripts/bench_scale.py --clocks): the harness's own clock is faster
        Clock(dut.clk, 10, unit="ns", impl="gpi").start()
    t0 = time.perf_counter()
    if not _uint(dut.all_done):
        await RisingEdge(dut.all_done)
    await ReadOnly()
    seconds = time.perf_counter() - t0
    task.cancel()
    if pred_task is not None:
        pred_task.cancel()
    error_code = _uint(dut.error_code)
    summary = {
        "n_images": job.n_images,
        "images": monitor.images,
        "images_done": _uint(dut.images_done),
        "cfg_words": _uint(dut.cfg_words),
        "cycles": _uint(dut.cycle),
        "sim_seconds": seconds,
        "error_code": error_code,
    }
    if predictions is not None:
        summary["predictions"] = predictions.beats
    job.summary.parent.mkdir(parents=True, exist_ok=True)
    job.summary.write_text(json.dumps(summary))
    assert error_code == 0, (f"harness error {error_code}: {HARNESS_ERRORS.get(error_code, 'unknown')} "
                             f"(after {summary['images_done']} of {job.n_images} images)")
    assert len(monitor.images) == job.n_starts, (
        f"the engine signalled done {len(monitor.images)} times for {job.n_starts} starts ({job.n_images} images)")
