"""`snncosim sweep` (placeholder wiring: the helper that builds this command replaces this whole file, keeping
`add_sweep_parser(subparsers)`)."""

from __future__ import annotations

import argparse

from golden.core.errors import SnnCosimError


def add_sweep_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("sweep", help="(being built)")
    parser.set_defaults(func=_not_built)
    return parser


def _not_built(args: argparse.Namespace) -> int:
    raise SnnCosimError("snncosim sweep is not built yet")
