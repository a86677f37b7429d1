"""The ports of ``snn_engine``, defined once (docs/architecture.md, "Ports").

:func:`engine_ports` is the one table: :class:`hw.engine.NetworkEngine`'s signature (:func:`engine_signature`),
the co-simulation harness's signal declarations and instance connections (``cosim.harness``), the port check of
``cosim.session`` and the port list of the Verilog folder's README (``hw.verilog.manifest_text``) are all made from
it. Amaranth's Verilog adds ``clk`` and ``rst`` (the sync domain) to these. Torch-free and Amaranth-free (only
:func:`engine_signature` imports Amaranth).
"""

from __future__ import annotations

from dataclasses import dataclass

from golden.core.counters import COUNTER_NAMES
from golden.core.register_map import CFG_ADDR_BITS

from .config import GROUP_BITS, IMAGE_BITS, LAYER_BITS, N_COUNTERS, PREDICTION_BITS, STEP_BITS

__all__ = ["Port", "engine_ports", "port_widths", "engine_signature", "config_write_signature", "CLOCK_PORTS"]

# The ports Amaranth adds for the sync domain (not in the table: no Component member)
CLOCK_PORTS = {"clk": ("in", 1), "rst": ("in", 1)}


@dataclass(frozen=True)
class Port:
    """One port of ``snn_engine``: ``direction`` "in" (driven by the host) or "out", ``width`` bits, ``meaning``
    (one line, as in the README manifest)."""

    name: str
    direction: str
    width: int
    meaning: str
    width_text: str = ""  # the width in the symbols of docs/architecture.md (P lanes, M membrane bits, W counter bits)
    fs_only: bool = False  # present in builds with FS hardware only


def engine_ports(config) -> tuple[Port, ...]:
    """Every port of ``snn_engine`` besides ``clk`` and ``rst``, in the order of docs/architecture.md. ``config``
    is an :class:`hw.config.EngineConfig` or anything with its ``lanes``, ``membrane_bits``, ``counter_bits``,
    ``cfg_data_bits`` and ``fs`` (``cosim.harness.HarnessParams``)."""
    P, M, W = int(config.lanes), int(config.membrane_bits), int(config.counter_bits)
    ports = [
        Port("cfg_valid", "in", 1, "configuration write, accepted while not running an image", "1"),
        Port("cfg_addr", "in", CFG_ADDR_BITS, "region << 24 | index (golden.core.register_map)", str(CFG_ADDR_BITS)),
        Port("cfg_data", "in", int(config.cfg_data_bits), "configuration data word", "cfg_data_bits"),
        Port("start", "in", 1, "one-cycle pulse: start an image (FS schedule: a stream of n_images images)", "1"),
        Port("n_steps", "in", STEP_BITS, "steps T of the image (ignored by the FS schedule)", str(STEP_BITS)),
        Port("busy", "out", 1, "running an image (or clearing the accumulator after rst)", "1"),
        Port("done", "out", 1, "one-cycle pulse: image finished; totals and prediction valid until the next start",
             "1"),
        Port("spike_in_valid", "in", 1, "input spike word valid", "1"),
        Port("spike_in_ready", "out", 1, "engine takes the word", "1"),
        Port("spike_in_data", "in", P, "W_1 words per step, in order; bit p of word w = input neuron w*P+p", "P"),
        Port("rec_valid", "out", 1, "record beat (step, layer, group) in UPDATE; never back-pressured", "1"),
        Port("rec_step", "out", STEP_BITS, "1-based step", str(STEP_BITS)),
        Port("rec_layer", "out", LAYER_BITS, "1-based layer", str(LAYER_BITS)),
        Port("rec_group", "out", GROUP_BITS, "lane group g", str(GROUP_BITS)),
        Port("rec_spikes", "out", P, "spike of neuron g*P+p at bit p", "P"),
        Port("rec_membranes", "out", P * M, "end-of-step membrane of lane p at [p*M +: M]", "P·M"),
        Port("sum_valid", "out", 1, "summary beat (step, layer)", "1"),
        Port("sum_step", "out", STEP_BITS, "1-based step", str(STEP_BITS)),
        Port("sum_layer", "out", LAYER_BITS, "1-based layer", str(LAYER_BITS)),
        Port("sum_counters", "out", N_COUNTERS * W, "counter k at [k*W +: W]: " + ", ".join(COUNTER_NAMES),
             f"{N_COUNTERS}·W"),
        Port("total_counters", "out", N_COUNTERS * W, "per-image totals (cleared at start), same layout; FS stream: "
                                                      "of the whole stream", f"{N_COUNTERS}·W"),
        Port("image_cycles", "out", W, "cycles of the image incl. C_IMAGE (FS stream: of the stream)", "W"),
        Port("prediction", "out", PREDICTION_BITS, "argmax of output spike counts, or of the output membranes for "
                                                   "an 'acc' output layer (ties: lowest index)", str(PREDICTION_BITS)),
    ]
    if config.fs:  # FS builds only: the image stream (docs/architecture.md, "FS-neurons")
        ports += [
            Port("n_images", "in", IMAGE_BITS, "FS stream: images of the stream, sampled at start (n_steps ignored)",
                 str(IMAGE_BITS), fs_only=True),
            Port("pred_valid", "out", 1, "FS stream: prediction beat (prediction of image pred_image)", "1",
                 fs_only=True),
            Port("pred_image", "out", IMAGE_BITS, "FS stream: 0-based image of the prediction beat", str(IMAGE_BITS),
                 fs_only=True),
        ]
    return tuple(ports)


def ports_markdown() -> str:
    """The port table of docs/architecture.md ("Ports"), made from :func:`engine_ports` of an FS build (every
    port) with the widths in symbols (P lanes, M membrane bits, W counter bits): ``python -m hw.ports`` prints it; a test checks the document holds it."""
    from types import SimpleNamespace

    build = SimpleNamespace(lanes=8, membrane_bits=24, counter_bits=32, cfg_data_bits=64, fs=True)
    lines = ["| port | dir | width | meaning |", "|---|---|---|---|"]
    for port in engine_ports(build):
        meaning = port.meaning.replace("|", "\\|")
        meaning += " (FS builds only)" if port.fs_only and not meaning.startswith("FS") else ""
        lines.append(f"| `{port.name}` | {port.direction} | {port.width_text} | {meaning} |")
    return "\n".join(lines) + "\n"


def port_widths(config) -> dict[str, tuple[str, int]]:
    """``name -> (direction, width)`` of :func:`engine_ports` (no ``clk``, ``rst``)."""
    return {port.name: (port.direction, port.width) for port in engine_ports(config)}


def config_write_signature(data_bits: int):
    """The engine's internal configuration-write bus: ``write`` (an accepted write: ``cfg_valid`` while the port is
    open), ``addr`` (``cfg_addr``: ``region << 24 | index``), ``data`` (``cfg_data``), all driven by the engine. The
    configuration registers (``GlobalRegisters``, ``LayerParams``) take it flipped as their member ``cfg``."""
    from amaranth.lib.wiring import Out, Signature

    return Signature({"write": Out(1), "addr": Out(CFG_ADDR_BITS), "data": Out(int(data_bits))})


def engine_signature(config):
    """The ``amaranth.lib.wiring.Signature`` of :class:`hw.engine.NetworkEngine`: one plain-signal member per port
    of :func:`engine_ports` (In for "in", Out for "out")."""
    from amaranth.lib.wiring import In, Out, Signature

    return Signature({port.name: (In if port.direction == "in" else Out)(port.width)
                      for port in engine_ports(config)})


if __name__ == "__main__":  # python -m hw.ports: the port table of docs/architecture.md
    print(ports_markdown(), end="")
