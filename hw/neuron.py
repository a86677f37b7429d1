"""P lanes of the IF/LIF neuron update of SPEC §3, as combinational logic (adds, compares, shifts only).

Per lane, with ``lo, hi`` the range of an M-bit two's-complement membrane::

    v_exact = v − (v >>> leak_shift if LIF) + acc + bias       # exact, in a wide enough signal
    v       = clamp(v_exact, lo, hi)                           # saturated flag = (v != v_exact)
    v       = max(v, floor)            if floor enabled
    s       = v ≥ θ
    v       = 0 (reset zero) or clamp(v − θ, lo, hi) (reset subtract)   if s

``v − θ`` cannot leave the range (``v ≥ θ ≥ 1``); it is clamped and flagged anyway, exactly as the golden
``golden.neurons.IntegerNeuron`` does, so the contract holds even for hand-made thresholds.
"""

from amaranth.hdl import Module, Mux, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .config import LEAK_SHIFT_BITS

__all__ = ["NeuronControl", "NeuronLanes"]


class NeuronControl(data.Struct):
    """A layer's neuron model; also the bit layout of configuration word 0 of a layer's params region."""

    lif: unsigned(1)  # 0 = IF, 1 = LIF
    subtract: unsigned(1)  # reset: 0 = to zero, 1 = subtract θ
    leak_shift: unsigned(LEAK_SHIFT_BITS)
    floor_en: unsigned(1)


def _clamp(value, lo: int, hi: int, width: int):
    """(clamped M-bit value, saturated flag) of a wide signed value."""
    high, low = value > hi, value < lo
    return Mux(high, hi, Mux(low, lo, value[:width].as_signed())), high | low


class NeuronLanes(wiring.Component):
    """Combinational neuron update of ``lanes`` neurons sharing one layer's parameters."""

    def __init__(self, lanes: int, membrane_bits: int, acc_bits: int, bias_bits: int, threshold_bits: int):
        self.lanes, self.membrane_bits = lanes, membrane_bits
        self.acc_bits, self.bias_bits, self.threshold_bits = acc_bits, bias_bits, threshold_bits
        lane = lambda shape: data.ArrayLayout(shape, lanes)  # noqa: E731
        super().__init__({
            "v": In(lane(signed(membrane_bits))),  # membrane before the step
            "acc": In(lane(signed(acc_bits))),  # exact synaptic input Σ W·x
            "bias": In(lane(signed(bias_bits))),
            "threshold": In(lane(unsigned(threshold_bits))),
            "control": In(NeuronControl),
            "floor": In(signed(membrane_bits)),
            "v_out": Out(lane(signed(membrane_bits))),  # membrane at the end of the step
            "spikes": Out(lanes),
            "saturated": Out(lanes),
        })

    def elaborate(self, platform):
        m = Module()
        M = self.membrane_bits
        lo, hi = -(1 << (M - 1)), (1 << (M - 1)) - 1
        ctl = self.control
        for p in range(self.lanes):
            v = self.v[p]
            leak = Mux(ctl.lif, v >> ctl.leak_shift, 0)  # arithmetic: v is signed
            v_exact = v - leak + self.acc[p] + self.bias[p]  # Amaranth widens every add: exact
            v_sat, sat_in = _clamp(v_exact, lo, hi, M)
            v_floor = Mux(ctl.floor_en & (v_sat < self.floor), self.floor, v_sat)
            spike = v_floor >= self.threshold[p]
            after, sat_reset = _clamp(v_floor - self.threshold[p], lo, hi, M)
            v_reset = Mux(ctl.subtract, after, 0)
            m.d.comb += [
                self.v_out[p].eq(Mux(spike, v_reset, v_floor)),
                self.spikes[p].eq(spike),
                self.saturated[p].eq(sat_in | (spike & ctl.subtract & sat_reset)),
            ]
        return m
