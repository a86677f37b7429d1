"""NIR (Neuromorphic Intermediate Representation, the ``nir`` package) import and export of integer networks.

:func:`import_nir` maps a NIR graph (IF/LIF, Affine/Linear, Conv2d, SumPool2d/AvgPool2d, Flatten, residual
adds) to an :class:`golden.core.network.IntegerNetwork` with one stated scale per layer; :func:`export_nir` /
:func:`write_nir` write a rate-coded IF/LIF network as a NIR graph that imports back bit for bit. The mapping,
the quantisation and the metadata keys: docs/nir.md. Needs the optional ``nir`` package (``snncosim[nir]``),
imported only when a function is called.
"""

from golden.nir.exporter import NirExportError, check_exportable, export_nir, write_nir
from golden.nir.importer import NirImportError, import_nir, read_nir_file

__all__ = ["NirExportError", "NirImportError", "check_exportable", "export_nir", "import_nir", "read_nir_file",
           "write_nir"]
