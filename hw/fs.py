"""FS-neuron hardware (Stöckl & Maass 2021; docs/architecture.md "FS-neurons", docs/hardware.md "FS neurons"):
the FS neuron lanes and the window schedule of the pipelined image stream.

Per lane, in the step of phase ``t`` of a layer's COLLECT or FIRE window (``sat()`` saturates to M bits)::

    COLLECT   base    = bias if t = 1 (the window's first step) else v
              drive   = ±(acc << k)                    # d_in[t] = ±2^k: a shift and a negation, no multiplier
              v       = sat(base + drive)              # saturated = clipped; no spike
    FIRE      z       = v ≥ T[t]                       # one signed compare
              v       = sat(v − h[t])   if z           # one subtract; saturated = z and clipped

``acc`` is the exact unshifted crossbar sum ``Σ_i W[j,i]·z_i(t)`` of the step: every source spike of one step has
the same phase t, so ``Σ_i W[j,i]·d[t]·z_i(t) = d[t]·Σ_i W[j,i]·z_i(t)`` and the shift is applied once per
neuron after the accumulation (exact: Amaranth widens the shift), which keeps the ACC memory at its IF width.

Window schedule (:class:`FsWindow`): global step g lies in window ``w = ceil(g/K)``; image n enters at window
``2n + 1``; layer l collects image n in window ``2n + l`` and fires it in ``2n + l + 1`` (the output layer L only
collects). So in window w layer l works on image ``(w − l) >> 1``, collecting when ``w − l`` is even and firing
when it is odd, and the layers that work at all form the contiguous range ``first..last``::

    first = max(1, w − 2N + 1)
    last  = min(L, w), minus 1 when w ≥ L and w − L is odd (layer L would fire: it only collects)

Layers outside the range are idle and cost no cycle. The stream ends with window ``2N − 2 + L``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.core.register_map import FS_NEGATIVE_BIT, FS_RESET_BASE, FS_THRESHOLD_BASE, FS_WEIGHT_BASE, REGION_SHIFT

from .config import IMAGE_BITS, LAYER_BITS, STEP_BITS
from .gated import Gated
from .ports import config_write_signature

__all__ = ["FsNeuronLanes", "FsWindow", "FsTables"]


class FsNeuronLanes(wiring.Component):
    """Combinational COLLECT / FIRE update of ``lanes`` FS neurons sharing one layer's table entry
    (``threshold`` T[t], ``reset`` h[t]) and the weight ``±2^shift`` of the spikes they receive."""

    def __init__(self, lanes: int, membrane_bits: int, acc_bits: int, bias_bits: int, shift_bits: int):
        self.lanes, self.membrane_bits, self.acc_bits, self.bias_bits = lanes, membrane_bits, acc_bits, bias_bits
        self.shift_bits = shift_bits
        lane = lambda shape: data.ArrayLayout(shape, lanes)  # noqa: E731
        super().__init__({
            "v": In(lane(signed(membrane_bits))),  # membrane before the step
            "acc": In(lane(signed(acc_bits))),  # exact Σ_i W[j,i]·z_i(t) of the step (unshifted)
            "bias": In(lane(signed(bias_bits))),
            "threshold": In(signed(membrane_bits)),  # T[t]
            "reset": In(signed(membrane_bits)),  # h[t]
            "shift": In(shift_bits),  # k of d_in[t] = ±2^k
            "negative": In(1),  # d_in[t] < 0
            "collect": In(1),  # 1: COLLECT, 0: FIRE
            "first": In(1),  # first step of a COLLECT window: v starts from the bias
            "v_out": Out(lane(signed(membrane_bits))),
            "spikes": Out(lanes),
            "saturated": Out(lanes),
            "enable": In(1, init=1),  # the cycles that use the results; elsewhere the outputs are 0
        })

    def elaborate(self, platform):
        m = Module()
        M = self.membrane_bits
        lo, hi = -(1 << (M - 1)), (1 << (M - 1)) - 1
        gated = Gated(m, self.enable)
        for p in range(self.lanes):
            v = self.v[p]
            shifted = gated(self.acc[p] << self.shift, f"shifted_{p}",
                            signed(self.acc_bits + (1 << self.shift_bits) - 1))
            base = Mux(self.first, self.bias[p], v)
            collected, sat_collect = gated.clamp(base + Mux(self.negative, -shifted, shifted), lo, hi, M,
                                                 f"collected_{p}")
            fire = gated(v >= self.threshold, f"fire_{p}")
            after, sat_fire = gated.clamp(v - self.reset, lo, hi, M, f"after_{p}")
            gated.drive(self.v_out[p], Mux(self.collect, collected, Mux(fire, after, v)))
            gated.drive(self.spikes[p], ~self.collect & fire)
            gated.drive(self.saturated[p], Mux(self.collect, sat_collect, fire & sat_fire))
        return m


class FsTables(wiring.Component):
    """The K-entry FS tables of one layer, written through ``cfg`` (the engine's configuration-write bus,
    :func:`hw.ports.config_write_signature`) in the layer's params region ``region`` at index ``base + t − 1``
    (t = 1..K = 2^phase_bits) and read at ``phase`` (k − 1; the data follow one cycle later): ``threshold`` T_l[t]
    (base 0x100) and ``reset`` h_l[t] (base 0x200), M-bit two's complement, only for a layer that ``fires`` (not
    the output layer); ``weight`` d_in[t] (base 0x300) as ``shift_bits`` bits of k and the negative bit (the
    configuration word's bits 0.. and 6)."""

    def __init__(self, region: int, membrane_bits: int, phase_bits: int, shift_bits: int, data_bits: int,
                 fires: bool = True):
        self.region, self.fires = int(region), bool(fires)
        self.membrane_bits, self.phase_bits, self.shift_bits = int(membrane_bits), int(phase_bits), int(shift_bits)
        members = {"cfg": In(config_write_signature(data_bits)), "phase": In(self.phase_bits)}
        if self.fires:
            members |= {"threshold": Out(signed(self.membrane_bits)), "reset": Out(signed(self.membrane_bits))}
        members["weight"] = Out(self.shift_bits + 1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg, K, M = self.cfg, 1 << self.phase_bits, self.membrane_bits
        index = cfg.addr[:REGION_SHIFT]

        def table(name, shape, base_index, data):
            mem = Memory(shape=shape, depth=K, init=[])
            m.submodules[name] = mem
            wp, rp = mem.write_port(), mem.read_port()
            m.d.comb += [wp.addr.eq(index[:self.phase_bits]), wp.data.eq(data), rp.addr.eq(self.phase),
                         wp.en.eq(cfg.write & (cfg.addr[REGION_SHIFT:] == self.region) & (index >= base_index)
                                  & (index < base_index + K))]
            return rp.data

        if self.fires:
            m.d.comb += [self.threshold.eq(table("threshold", signed(M), FS_THRESHOLD_BASE, cfg.data[:M])),
                         self.reset.eq(table("reset", signed(M), FS_RESET_BASE, cfg.data[:M]))]
        weight_code = Cat(cfg.data[:self.shift_bits], cfg.data[FS_NEGATIVE_BIT])
        m.d.comb += self.weight.eq(table("weight", unsigned(self.shift_bits + 1), FS_WEIGHT_BASE, weight_code))
        return m


class FsWindow(wiring.Component):
    """Which layers work in window ``window`` of a stream of ``n_images`` images through ``n_layers`` layers, and
    what layer ``layer`` does there (module docstring). Combinational; ``window`` ≥ 1, ``n_images`` ≥ 1.

    ``first``/``last``: the range of working layers (``empty`` when ``first > last``, which happens only for
    L = 1 in every even window); ``collect``/``image``: the mode and image of ``layer`` (meaningful for working
    layers); ``final``: the stream's last window ``2N − 2 + L``."""

    def __init__(self, n_layers: int):
        self.n_layers = n_layers
        super().__init__({
            "window": In(STEP_BITS),
            "n_images": In(IMAGE_BITS),
            "layer": In(LAYER_BITS),
            "first": Out(LAYER_BITS),
            "last": Out(LAYER_BITS),
            "empty": Out(1),
            "collect": Out(1),
            "image": Out(IMAGE_BITS),
            "final": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        L = self.n_layers
        w, n = self.window, self.n_images
        low = Signal(signed(STEP_BITS + 2))  # w − 2N + 1
        m.d.comb += low.eq(w - (n << 1) + 1)
        m.d.comb += self.first.eq(Mux(low < 1, 1, low[:LAYER_BITS]))
        beyond = Signal(signed(STEP_BITS + 1))  # w − L
        m.d.comb += beyond.eq(w - L)
        with m.If(beyond < 0):
            m.d.comb += self.last.eq(w[:LAYER_BITS])
        with m.Elif(beyond[0]):
            m.d.comb += self.last.eq(L - 1)  # layer L would fire: it only collects
        with m.Else():
            m.d.comb += self.last.eq(L)
        m.d.comb += self.empty.eq(self.first > self.last)
        offset = Signal(signed(STEP_BITS + 1))  # w − layer
        m.d.comb += [offset.eq(w - self.layer), self.collect.eq(~offset[0]), self.image.eq(offset[1:])]
        m.d.comb += self.final.eq(w == (n << 1) + (L - 2))
        return m
