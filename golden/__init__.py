"""snncosim golden model: ANN to SNN conversion and exact integer simulation in PyTorch."""

from .errors import SnnCosimError

__all__ = ["SnnCosimError"]
