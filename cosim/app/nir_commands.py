"""The NIR commands of ``snncosim`` (docs/nir.md); ``cosim/app/cli.py`` wires them in.

* ``snncosim export-nir NET.snn -o GRAPH.nir [--force]``: :func:`add_export_nir_parser` adds the sub-command,
  :func:`export_nir_command` runs it.
* ``snncosim convert GRAPH.nir -o NET.snn [--weight-bits B] [--membrane-bits M] [--dt DT] [--scale S] [--force]``:
  :func:`convert_nir` (called by the ``convert`` command when its source is a ``.nir`` file);
  :func:`add_nir_convert_options` adds ``--dt`` and ``--scale`` to the ``convert`` parser.

Every user mistake raises :class:`golden.core.errors.SnnCosimError` (one ``snncosim: error:`` line, exit 2); the
output path is checked before anything is read, and nothing is written on an error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from golden.core.errors import SnnCosimError


def add_export_nir_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``export-nir NET.snn -o GRAPH.nir [--force]`` to ``subparsers`` (``func`` = :func:`export_nir_command`)."""
    parser = subparsers.add_parser(
        "export-nir", help="write a rate-coded IF/LIF integer network as a NIR graph (.nir, the 'nir' package)")
    parser.add_argument("network", type=Path, help="integer-network directory (from 'snncosim convert' or a run)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="GRAPH.nir",
                        help="output file, e.g. mnist.nir")
    parser.add_argument("--force", action="store_true",
                        help="accepted for symmetry with the other commands: an earlier .nir written by snncosim is "
                             "always replaced, any other file never")
    parser.add_argument("--quiet", "-q", action="store_true")
    parser.set_defaults(func=export_nir_command)
    return parser


def add_nir_convert_options(parser: argparse.ArgumentParser) -> None:
    """The options that only ``convert GRAPH.nir`` reads: ``--dt`` (the LIF time step) and ``--scale`` (one
    per-layer quantisation scale instead of the one that fills ``--weight-bits``)."""
    parser.add_argument("--dt", type=float, default=None,
                        help="NIR graphs: the time step the LIF time constants refer to (default: the graph's "
                             "metadata dt, else tau/r as snnTorch writes r = tau/dt)")
    parser.add_argument("--scale", type=float, default=None,
                        help="NIR graphs: the quantisation scale of every layer (default: the largest weight fills "
                             "--weight-bits)")


def export_nir_command(args: argparse.Namespace) -> int:
    """``snncosim export-nir``: load ``args.network``, export it to ``args.output``; prints one line."""
    from golden.core.network import IntegerNetwork
    from golden.nir.exporter import check_exportable, check_nir_output, write_nir

    check_nir_output(args.output, force=args.force, option="-o")
    network = IntegerNetwork.load(args.network)
    check_exportable(network)
    path = write_nir(network, args.output, force=args.force, option="-o")
    kinds = "/".join(sorted({f"{layer.neuron.kind}-{layer.neuron.reset}" for layer in network.layers}))
    print(f"wrote {path} ({_sizes(network)}, {kinds}, from {args.network}; integer units, scale 1)")
    return 0


def convert_nir(args: argparse.Namespace) -> int:
    """``snncosim convert GRAPH.nir -o NET.snn``: ``args.source`` (the .nir path), ``args.output``,
    ``args.weight_bits``, ``args.membrane_bits``, ``args.force``, ``args.quiet``; optional ``args.dt`` (the LIF
    time step) and ``args.scale`` (one per-layer scale for every layer). Prints one line ``wrote NET.snn (...)``
    (plus ``note:`` lines on stderr for LIF leak approximations unless quiet) and returns 0."""
    from golden.core.files import check_output_path
    from golden.nir.importer import import_nir

    for name in ("weight_bits", "membrane_bits"):
        value = getattr(args, name, None)
        if value is not None and not isinstance(value, int):
            raise SnnCosimError(f"--{name.replace('_', '-')} must be an integer, got {value!r}")
    weight_bits = 8 if getattr(args, "weight_bits", None) is None else args.weight_bits
    membrane_bits = 24 if getattr(args, "membrane_bits", None) is None else args.membrane_bits
    if not 2 <= weight_bits <= 32:
        raise SnnCosimError(f"--weight-bits must be in 2..32, got {weight_bits}")
    if not 4 <= membrane_bits <= 62:
        raise SnnCosimError(f"--membrane-bits must be in 4..62, got {membrane_bits}")
    dt, scale = getattr(args, "dt", None), getattr(args, "scale", None)
    for option, value in (("--dt", dt), ("--scale", scale)):
        if value is not None and not (isinstance(value, (int, float)) and value > 0 and value != float("inf")):
            raise SnnCosimError(f"{option} must be a positive number, got {value!r}")
    force = bool(getattr(args, "force", False))
    check_output_path(args.output, "network", force=force, option="-o")
    source = Path(args.source)
    network = import_nir(source, weight_bits=weight_bits, membrane_bits=membrane_bits, dt=dt, scale=scale,
                         label=str(source))
    path = network.save(args.output, force=force, option="-o")
    info = network.metadata["nir"]
    scales = [layer["scale"] for layer in info["layers"]]
    scale_text = "exact, scale 1" if info["exact"] else "scale " + ", ".join(f"{s:.4g}" for s in scales)
    skips = f", {len(network.skips)} residual junctions" if network.skips else ""
    kinds = "/".join(sorted({layer.neuron.kind for layer in network.layers}))
    print(f"wrote {path} ({_sizes(network)}{skips}, {kinds}, from {source}: {info['nodes']} nodes, {scale_text})")
    if not getattr(args, "quiet", False):
        for note in info["notes"]:
            print(f"note: {note}", file=sys.stderr)
    return 0


def _sizes(network) -> str:
    return " -> ".join("x".join(str(v) for v in shape)
                       for shape in [network.input_shape] + [layer.out_shape for layer in network.layers])
