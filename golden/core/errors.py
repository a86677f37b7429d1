"""User-facing errors.

Every mistake a user can make (bad input file, unsupported layer, a network that does not fit the chosen
widths, a missing tool) raises a subclass of :class:`SnnCosimError` with a one-line message that says what is
wrong and what to do instead. The command line prints that line and exits non-zero; it never shows a traceback
for these.
"""


class SnnCosimError(Exception):
    """Base class of every error caused by user input or the user's environment."""


class UnsupportedLayerError(SnnCosimError):
    """The torch network contains a layer that cannot be converted."""


class WidthError(SnnCosimError):
    """A value does not fit the configured bit width."""


class NetworkFileError(SnnCosimError):
    """An integer-network file is missing, corrupted or of an unknown version."""


class DataError(SnnCosimError):
    """A data set file is missing or malformed."""


class ToolchainError(SnnCosimError):
    """A required external tool (Verilator, a C++ compiler) is missing or too old."""


class TraceMismatch(SnnCosimError):
    """Golden model and RTL disagree (raised by strict comparisons)."""
