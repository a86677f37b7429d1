"""Field checks of the integer-network schema (docs/file-format.md): each problem becomes one line naming the field.
Shared by the network's validation (:mod:`golden.core.network`) and its file reader (:mod:`golden.core.network_file`)."""

from __future__ import annotations

import re

import numpy as np

from golden.core.errors import NetworkFileError, WidthError

SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def is_int(value) -> bool:
    """A Python or numpy integer; bools (Python or numpy) are not integers here."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def show(value) -> str:
    """A value for a one-line message: its repr, with the type named where the repr hides it, at most 80 chars."""
    if isinstance(value, (bool, np.bool_)):
        text = f"{bool(value)} (a boolean)"
    elif isinstance(value, str):
        text = f"{value!r} (a string)"
    elif isinstance(value, np.generic):
        text = f"{value.item()!r} (numpy {value.dtype})"
    elif isinstance(value, (list, tuple, dict)) or value is None or isinstance(value, (int, float)):
        text = repr(value)
    else:
        text = f"{value!r} ({type(value).__name__})"
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77] + "..."


def one_line(exc: BaseException) -> str:
    """``Class: first line of the message`` of an exception raised by a library (zip, zlib, numpy)."""
    lines = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {lines[0][:200]}" if lines else exc.__class__.__name__


def range_text(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f"in {lo}..{hi}"
    return f">= {lo}" if lo is not None else f"<= {hi}"


class Fields:
    """Checks of single fields that raise one line ``PREFIX FIELD: PROBLEM``: the file's schema (PREFIX = the
    manifest's path, FIELD = ``layers[0].neuron.floor``) and the same checks on a network built in Python."""

    def __init__(self, prefix: str = ""):
        self.prefix = prefix

    def fail(self, field: str, problem: str, error: type = NetworkFileError):
        raise error(f"{self.prefix}{field}: {problem}")

    def integer(self, value, field: str, lo=None, hi=None, error: type = WidthError) -> int:
        if not is_int(value):
            self.fail(field, f"must be an integer, got {show(value)}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            self.fail(field, f"must be {range_text(lo, hi)}, got {int(value)}", error)
        return int(value)

    def choice(self, value, field: str, choices) -> str:
        if not isinstance(value, str) or value not in choices:
            self.fail(field, f"must be one of {', '.join(repr(c) for c in choices)}, got {show(value)}")
        return value

    def boolean(self, value, field: str) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            self.fail(field, f"must be true or false, got {show(value)}")
        return bool(value)

    def string(self, value, field: str) -> str:
        if not isinstance(value, str):
            self.fail(field, f"must be a string, got {show(value)}")
        return value

    def int_list(self, value, field: str, lengths: tuple[int, ...], lo: int) -> list[int]:
        """A list (or tuple) of ``lengths`` integers, each ``>= lo``."""
        count = " or ".join(str(n) for n in lengths)
        what = "positive integers" if lo == 1 else f"integers >= {lo}"
        if not isinstance(value, (list, tuple)) or len(value) not in lengths:
            self.fail(field, f"must be a list of {count} {what}, got {show(value)}")
        return [self.integer(v, f"{field}[{k}]", lo, None, NetworkFileError) for k, v in enumerate(value)]

    def mapping(self, value, field: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
        """A mapping with every ``required`` key and no key outside ``required + optional``."""
        if not isinstance(value, dict):
            self.fail(field, f"must be a mapping, got {show(value)}")
        allowed = required + optional
        for key in value:
            if key not in allowed:
                self.fail(join_field(field, str(key)), f"unknown key (allowed here: {', '.join(allowed)})")
        for key in required:
            if key not in value:
                self.fail(join_field(field, key), "required key missing")
        return value

    def sha256(self, value, field: str) -> str:
        if not isinstance(value, str) or not SHA256_HEX.fullmatch(value):
            self.fail(field, f"must be a SHA-256 as 64 lowercase hex digits, got {show(value)}")
        return value


def join_field(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


# The manifest schema (docs/file-format.md). Keys per mapping: (required, optional).
