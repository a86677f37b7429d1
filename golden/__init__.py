"""snncosim golden model: ANN to SNN conversion and exact integer simulation in PyTorch."""

from golden.core.errors import SnnCosimError

__all__ = ["SnnCosimError"]
