"""The window register of the FS image stream (Stöckl & Maass 2021; docs/hardware.md, "FS neurons"): the current
window of the pipelined schedule, the stream's image count, and what the layers do in this window and the next
(:class:`~hw.fs.FsWindow` of each; window arithmetic in ``hw.fs``)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .config import IMAGE_BITS, LAYER_BITS, STEP_BITS
from .fs import FsWindow

__all__ = ["FsStreamWindow"]


class FsStreamWindow(wiring.Component):
    """``start`` (the cycle that starts a stream) loads window 1 and samples ``stream_images`` (N);
    ``advance`` moves to the next window that has work (for L = 1 every even window is empty and skipped:
    ``skip_next`` says so, the schedule then skips its K steps too).

    Of ``layer`` in the current window: ``collect`` (else it fires) and ``image`` (0-based); of the window: the
    working layers ``first..last`` and ``final`` (the stream's last window); of the next window: ``next_first``."""

    def __init__(self, n_layers: int):
        self.n_layers = int(n_layers)
        super().__init__({
            "start": In(1), "stream_images": In(IMAGE_BITS), "advance": In(1), "layer": In(LAYER_BITS),
            "first": Out(LAYER_BITS), "last": Out(LAYER_BITS), "final": Out(1),
            "collect": Out(1), "image": Out(IMAGE_BITS),
            "next_first": Out(LAYER_BITS), "skip_next": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fs_window = current = FsWindow(self.n_layers)
        m.submodules.fs_next_window = following = FsWindow(self.n_layers)
        window = Signal(STEP_BITS)  # 1-based window of the current global step, ceil(step / K)
        n_images = Signal(IMAGE_BITS)  # images of the stream, sampled at start
        m.d.comb += [current.window.eq(window), current.n_images.eq(n_images), current.layer.eq(self.layer),
                     following.window.eq(window + 1), following.n_images.eq(n_images), following.layer.eq(0)]
        with m.If(self.start):
            m.d.sync += [window.eq(1), n_images.eq(self.stream_images)]
        with m.If(self.advance):
            if self.n_layers == 1:  # the window after an empty one is in the stream: window + 2
                with m.If(following.empty):
                    m.d.sync += window.eq(window + 2)
                with m.Else():
                    m.d.sync += window.eq(window + 1)
            else:
                m.d.sync += window.eq(window + 1)
        m.d.comb += [
            self.first.eq(current.first), self.last.eq(current.last), self.final.eq(current.final),
            self.collect.eq(current.collect), self.image.eq(current.image),
            self.next_first.eq(following.first),
            self.skip_next.eq(following.empty if self.n_layers == 1 else 0),
        ]
        return m
