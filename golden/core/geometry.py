"""The geometry of a conv2d / avgpool2d layer as one named, hashable tuple of integers: the shape the golden cycle
model, the engine configuration (``hw.config.EngineConfig.spatial``) and the hardware's address generators share.
Dense layers have no geometry (``()``). Torch-free."""

from __future__ import annotations

from typing import NamedTuple

from golden.core.errors import SnnCosimError

__all__ = ["Geometry", "SPATIAL_FIELDS", "geometry_of"]


class Geometry(NamedTuple):
    """The geometry of one conv2d / avgpool2d layer (or conv skip) as plain integers. A Geometry is a tuple, so it
    hashes, compares and serialises as the bare 13-tuple it names (build caches keep their keys)."""

    pool: int  # 1: avgpool2d, 0: conv2d
    c_in: int
    h_in: int
    w_in: int
    c_out: int
    h_out: int
    w_out: int
    kernel_h: int
    kernel_w: int
    stride_y: int
    stride_x: int
    pad_y: int
    pad_x: int

    @classmethod
    def of(cls, values) -> "Geometry | tuple[()]":
        """``values`` (a geometry tuple, or ``()`` for dense) as a Geometry of ints, ``()`` for dense; a tuple of
        the wrong length comes back as a plain tuple (EngineConfig's validation names it)."""
        values = tuple(int(v) for v in values)
        return cls(*values) if len(values) == len(cls._fields) else values

    @property
    def is_pool(self) -> bool:
        return bool(self.pool)

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return self.c_in, self.h_in, self.w_in

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return self.c_out, self.h_out, self.w_out

    @property
    def in_positions(self) -> int:
        """``h_in · w_in``: input positions (source mask words per channel group)."""
        return self.h_in * self.w_in

    @property
    def out_positions(self) -> int:
        """``h_out · w_out``: output positions."""
        return self.h_out * self.w_out

    @property
    def taps(self) -> int:
        """``kernel_h · kernel_w``: kernel taps per input channel."""
        return self.kernel_h * self.kernel_w


SPATIAL_FIELDS = Geometry._fields


def geometry_of(layer) -> "Geometry | tuple[()]":
    """The :class:`Geometry` of a conv2d / avgpool2d layer of an integer network, ``()`` for a dense layer."""
    kind = layer.kind
    if kind == "dense":
        return ()
    c_in, h, w = (int(v) for v in layer.in_shape)
    c_out, ho, wo = (int(v) for v in layer.out_shape)
    if kind == "conv2d":
        kh, kw = (int(v) for v in layer.weight.shape[2:])
        return Geometry(0, c_in, h, w, c_out, ho, wo, kh, kw, int(layer.stride[0]), int(layer.stride[1]),
                        int(layer.padding[0]), int(layer.padding[1]))
    if kind == "avgpool2d":
        return Geometry(1, c_in, h, w, c_out, ho, wo, int(layer.kernel[0]), int(layer.kernel[1]),
                        int(layer.stride[0]), int(layer.stride[1]), 0, 0)
    raise SnnCosimError(f"layer kind {kind!r} has no geometry")
