"""P lanes of the neuron update of SPEC §3, as combinational logic (adds, compares, shifts only), and the global
phase counter of weighted spikes.

Per lane, with ``lo, hi`` the range of an M-bit two's-complement membrane and ``sh`` the phase shift (0 unless the
layer is ``ws`` or ``acc``)::

    drive   = (acc + bias) << sh                                 # IF/LIF: sh = 0
    v_exact = v − (v >>> leak_shift if LIF) + drive              # exact, in a wide enough signal
            = v                          for 'acc' while t ≤ S·K (the output accumulator is gated off)
    v       = clamp(v_exact, lo, hi)                             # saturated flag = (v != v_exact)
    v       = max(v, floor)              if floor enabled
    v       = max(v, −θ)                 if floor −θ enabled (Lee 2016; IF/LIF, sh = 0)
    θ_k     = θ << sh
    s       = v ≥ θ_k                    (never for 'acc')
    v       = 0 (reset zero) or v − θ_k (reset subtract; in [0, hi], no clamp needed)   if s

Amaranth widens every add and every shift by a signal (``x << sh`` is ``len(x) + 2^len(sh) − 1`` bits), so the
sum is exact before the one saturation. ``v − θ_k`` cannot leave the range: where the lane fires, ``θ_k ≤ v ≤ hi``
and θ is unsigned (``θ_k ≥ 0``, even for hand-made thresholds), so ``v − θ_k ∈ [0, hi]``. The golden model's clamp
of that step never clips, and the lanes take its M low bits without one (measured: 3 % fewer simulated instructions
per cycle under Verilator, the lanes being half of them).

:class:`InhibitLanes` is the INHIBIT pass of lateral inhibition (Lee 2016, docs/spec.md §3c): with n the layer's
spikes of the step and s the lane's own spike, ``m = n − s``; where m > 0, ``v = floor(clamp(v − u·m))`` (one
multiplier per lane).
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.core.register_map import INHIBIT_BASE, PARAM_BITS, PARAM_FIELDS, REGION_SHIFT

from .gated import Gated
from .ports import config_write_signature

__all__ = ["NeuronControl", "LayerParams", "NeuronLanes", "InhibitLanes", "InhibitStrengths", "PhaseCounter"]


# A layer's neuron model: the params word of golden.core.register_map (PARAM_FIELDS) as an Amaranth struct layout
NeuronControl = data.StructLayout({name: unsigned(bits) for name, bits in PARAM_FIELDS})
assert NeuronControl.size == PARAM_BITS


class LayerParams(wiring.Component):
    """The neuron parameter registers of one layer, written through the configuration port in the layer's params
    region ``region`` (``4(l−1)+3``): index 0 the params word (``control``, the low ``PARAM_BITS`` data bits),
    index 1 the floor (``floor``, ``membrane_bits`` two's complement), written through ``cfg``, the engine's
    configuration-write bus (:func:`hw.ports.config_write_signature`). Both are 0 after reset."""

    def __init__(self, region: int, membrane_bits: int, data_bits: int):
        self.region = int(region)
        super().__init__({"cfg": In(config_write_signature(data_bits)),
                          "control": Out(NeuronControl), "floor": Out(signed(membrane_bits))})

    def elaborate(self, platform):
        m = Module()
        control, floor = Signal(NeuronControl), Signal.like(self.floor)
        cfg = self.cfg
        index = cfg.addr[:REGION_SHIFT]
        with m.If(cfg.write & (cfg.addr[REGION_SHIFT:] == self.region)):
            with m.If(index == 0):
                m.d.sync += control.eq(cfg.data[:PARAM_BITS])
            with m.If(index == 1):
                m.d.sync += floor.eq(cfg.data[:len(floor)])
        m.d.comb += [self.control.eq(control), self.floor.eq(floor)]
        return m


class NeuronLanes(wiring.Component):
    """Combinational neuron update of ``lanes`` neurons sharing one layer's parameters.

    With ``phase_bits > 0`` the lanes also have the weighted-spike modes: ``shift`` is the global phase shift
    ``sh = K − k`` and ``integrate`` is ``t > S·K`` (an ``acc`` layer adds nothing while it is 0)."""

    def __init__(self, lanes: int, membrane_bits: int, acc_bits: int, bias_bits: int, threshold_bits: int,
                 phase_bits: int = 0):
        self.lanes, self.membrane_bits = lanes, membrane_bits
        self.acc_bits, self.bias_bits, self.threshold_bits = acc_bits, bias_bits, threshold_bits
        self.phase_bits = phase_bits
        lane = lambda shape: data.ArrayLayout(shape, lanes)  # noqa: E731
        ports = {
            "v": In(lane(signed(membrane_bits))),  # membrane before the step
            "acc": In(lane(signed(acc_bits))),  # exact synaptic input Σ W·x
            "bias": In(lane(signed(bias_bits))),
            "threshold": In(lane(unsigned(threshold_bits))),
            "control": In(NeuronControl),
            "floor": In(signed(membrane_bits)),
            "v_out": Out(lane(signed(membrane_bits))),  # membrane at the end of the step
            "spikes": Out(lanes),
            "saturated": Out(lanes),
            "enable": In(1, init=1),  # the cycles that use the results; elsewhere the outputs are 0
        }
        if phase_bits:
            ports |= {"shift": In(phase_bits), "integrate": In(1)}
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        M = self.membrane_bits
        lo, hi = -(1 << (M - 1)), (1 << (M - 1)) - 1
        ctl = self.control
        if self.phase_bits:
            sh = Signal(self.phase_bits)
            hold = Signal()  # an 'acc' layer while t ≤ S·K: v unchanged
            m.d.comb += [sh.eq(Mux(ctl.ws | ctl.acc, self.shift, 0)), hold.eq(ctl.acc & ~self.integrate)]
        gated = Gated(m, self.enable)
        for p in range(self.lanes):
            v = self.v[p]
            leak = Mux(ctl.lif, v >> ctl.leak_shift, 0)  # arithmetic: v is signed
            drive = self.acc[p] + self.bias[p]
            theta = self.threshold[p]
            if self.phase_bits:
                drive = Mux(hold, 0, drive << sh)  # shifts by the phase: no multiplier
                theta = theta << sh
            theta = gated(theta, f"theta_k_{p}")
            v_exact = gated(v - leak + drive, f"v_exact_{p}")  # Amaranth widens every add and shift: exact
            v_sat, sat_in = gated.clamp(v_exact, lo, hi, M, f"v_sat_{p}")
            v_fixed = gated(Mux(ctl.floor_en & (v_sat < self.floor), self.floor, v_sat), f"v_fixed_{p}")
            neg_theta = gated(-self.threshold[p], f"neg_theta_{p}")
            v_floor = gated(Mux(ctl.floor_theta & (v_fixed < neg_theta), neg_theta, v_fixed), f"v_floor_{p}")
            spike = v_floor >= theta
            if self.phase_bits:
                spike = spike & ~ctl.acc
            spike = gated(spike, f"spike_{p}")
            # reset by subtraction: where it fires, θ_k ≤ v_floor ≤ hi with θ_k ≥ 0 (unsigned), so v − θ_k lies in
            # [0, hi]: the contract's clamp of this step can never clip, and its M low bits are the value
            after = (v_floor - theta)[:M].as_signed()
            v_reset = Mux(ctl.subtract, after, 0)
            gated.drive(self.v_out[p], Mux(spike, v_reset, v_floor))
            gated.drive(self.spikes[p], spike)
            gated.drive(self.saturated[p], sat_in)
        return m


class InhibitLanes(wiring.Component):
    """Combinational INHIBIT update of ``lanes`` neurons (docs/spec.md §3c): ``n`` = spikes of the whole layer in
    this step, ``own`` = the lanes' own spikes; per lane ``m = n − s``, and where ``m > 0`` (``active``)
    ``v_out = floor(clamp(v − u·m, lo, hi))`` with the layer's floor (fixed, or −θ), else ``v_out = v``.
    ``saturated`` flags lanes whose clamp clipped (only the lower bound can)."""

    def __init__(self, lanes: int, membrane_bits: int, threshold_bits: int, count_bits: int):
        self.lanes, self.membrane_bits = lanes, membrane_bits
        self.threshold_bits, self.count_bits = threshold_bits, count_bits
        lane = lambda shape: data.ArrayLayout(shape, lanes)  # noqa: E731
        super().__init__({
            "v": In(lane(signed(membrane_bits))),  # membrane after UPDATE (after reset)
            "own": In(lanes),
            "n": In(count_bits),
            "u": In(lane(unsigned(threshold_bits))),
            "threshold": In(lane(unsigned(threshold_bits))),
            "control": In(NeuronControl),
            "floor": In(signed(membrane_bits)),
            "v_out": Out(lane(signed(membrane_bits))),
            "active": Out(lanes),  # m > 0: one multiply (MAC) counted
            "saturated": Out(lanes),
            "enable": In(1, init=1),  # the cycles that use the results; elsewhere the outputs are 0
        })

    def elaborate(self, platform):
        m = Module()
        M = self.membrane_bits
        lo, hi = -(1 << (M - 1)), (1 << (M - 1)) - 1
        ctl = self.control
        gated = Gated(m, self.enable)
        for p in range(self.lanes):
            # n counts the lane's own spike: m = n − s is never negative
            count = gated(self.n - self.own[p], f"m_{p}", unsigned(self.count_bits))
            v_exact = gated(self.v[p] - self.u[p] * count, f"inh_exact_{p}",
                            signed(M + self.threshold_bits + self.count_bits + 1))
            v_clamped, clip = gated.clamp(v_exact, lo, hi, M, f"inh_sat_{p}")
            v_fixed = gated(Mux(ctl.floor_en & (v_clamped < self.floor), self.floor, v_clamped), f"inh_fixed_{p}")
            neg_theta = gated(-self.threshold[p], f"inh_neg_theta_{p}")
            v_floor = gated(Mux(ctl.floor_theta & (v_fixed < neg_theta), neg_theta, v_fixed), f"inh_floor_{p}")
            active = gated(count != 0, f"inh_active_{p}")
            gated.drive(self.v_out[p], Mux(active, v_floor, self.v[p]))
            gated.drive(self.active[p], active)
            gated.drive(self.saturated[p], active & clip)
        return m


class InhibitStrengths(wiring.Component):
    """The WTA strengths u of one layer with lateral inhibition (Lee 2016, docs/spec.md §3c): ``groups`` words of
    ``lanes`` × ``threshold_bits`` (unsigned), written through ``cfg`` (the engine's configuration-write bus,
    :func:`hw.ports.config_write_signature`) in the layer's params region ``region`` at index ``0x400 + g``, read
    at ``group`` (the data follow one cycle later, like θ)."""

    def __init__(self, region: int, lanes: int, threshold_bits: int, groups: int, data_bits: int):
        self.region, self.groups = int(region), int(groups)
        super().__init__({"cfg": In(config_write_signature(data_bits)),
                          "group": In(max(1, (self.groups - 1).bit_length())),
                          "u": Out(data.ArrayLayout(unsigned(threshold_bits), lanes))})

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        index = cfg.addr[:REGION_SHIFT]
        m.submodules.memory = mem = Memory(shape=self.u.shape(), depth=self.groups, init=[])
        wp, rp = mem.write_port(), mem.read_port()
        m.d.comb += [wp.addr.eq(index - INHIBIT_BASE), wp.data.eq(cfg.data), rp.addr.eq(self.group),
                     wp.en.eq(cfg.write & (cfg.addr[REGION_SHIFT:] == self.region) & (index >= INHIBIT_BASE)
                              & (index < INHIBIT_BASE + self.groups)),
                     self.u.eq(rp.data)]
        return m


class PhaseCounter(wiring.Component):
    """The one phase counter of weighted spikes, shared by every layer: ``k = 1 + (t−1) mod K``, advanced once per
    step, and its shift ``sh = K − k`` (0 while ``phases`` = K = 0).

    ``restart`` (the cycle that starts an image) makes the next step t = 1; ``advance`` moves to the next step.
    The counter holds ``k − 1`` (output ``index``; ``last`` is 1 in the period's last phase k = K) and reads K
    combinationally, so a K written in the start cycle already counts."""

    def __init__(self, phase_bits: int):
        if phase_bits < 1:
            raise ValueError(f"PhaseCounter needs phase_bits >= 1, got {phase_bits}")
        self.phase_bits = phase_bits
        super().__init__({
            "phases": In(phase_bits + 1),  # K in 0..2^phase_bits
            "restart": In(1),
            "advance": In(1),
            "shift": Out(phase_bits),
            "index": Out(phase_bits),  # k − 1
            "last": Out(1),  # k = K (or K = 0)
        })

    def elaborate(self, platform):
        m = Module()
        index = Signal(self.phase_bits)  # k − 1
        wraps = Signal()
        m.d.comb += wraps.eq(index + 1 >= self.phases)
        with m.If(self.restart):
            m.d.sync += index.eq(0)
        with m.Elif(self.advance):
            m.d.sync += index.eq(Mux(wraps, 0, index + 1))
        m.d.comb += [self.shift.eq(Mux(self.phases == 0, 0, self.phases - 1 - index)), self.index.eq(index),
                     self.last.eq(wraps)]
        return m
