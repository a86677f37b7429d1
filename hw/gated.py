"""Logic evaluated only in the cycles that use it: :class:`Gated` values (the neuron lanes' combinational update,
docs/hardware.md, "Simulation speed").

A gated value is a signal assigned under ``If(enable)`` (0 otherwise). Every value of a lane's update that feeds
more than one place is made one, so that no part of the lanes' logic lies outside an enable: in Verilog each
becomes a process ``x = 0; if (enable) x = …``, and Verilator (with its DFG pass off, which would turn the
processes back into always-evaluated multiplexers) evaluates the lanes only in the cycles that use their results.
Measured on the MNIST engine (scripts/bench_scale.py): the lanes were ~40 % of the simulated instructions per cycle
while they matter in ~1 cycle in 30. Synthesis sees the same logic plus an AND per output bit (the outputs are 0
while idle: operand isolation, which also keeps the lanes from toggling in an ASIC)."""

from __future__ import annotations

from amaranth.hdl import Mux, Signal, Value, signed

__all__ = ["Gated"]


class Gated:
    """Makes gated values in module ``m`` under the 1-bit ``enable``."""

    def __init__(self, m, enable):
        self.m, self.enable = m, enable

    def drive(self, target, value):
        """``target`` = ``value`` while enabled (an output port of the lanes), else 0."""
        with self.m.If(self.enable):
            self.m.d.comb += target.eq(value)

    def __call__(self, value, name: str, shape=None):
        """A new signal named ``name`` (``value``'s shape unless ``shape`` is given) holding ``value`` while
        enabled."""
        signal = Signal(shape if shape is not None else Value.cast(value).shape(), name=name)
        self.drive(signal, value)
        return signal

    def clamp(self, value, lo: int, hi: int, width: int, name: str):
        """(``value`` clamped to [lo, hi] as a ``width``-bit signed signal, saturated flag) of a wide signed
        value."""
        high, low = self(value > hi, f"{name}_high"), self(value < lo, f"{name}_low")
        clamped = self(Mux(high, hi, Mux(low, lo, value[:width].as_signed())), name, signed(width))
        return clamped, high | low
