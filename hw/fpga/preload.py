"""The design the FPGA flow synthesises: weights in the engine's own block RAMs from the bitstream, not copied in
from a second ROM.

``snn_top`` of ``snncosim verilog`` streams every configuration write from a ROM after reset, so a device holds the
weights twice (the ROM and the engine's weight memories): the MNIST MLP's 1.6 Mbit of weights took 221 of the
LFE5U-85F's 208 DP16KD. Here the weight memories (``weights_l``, ``skip_weights_l``) start with the contents the
configuration would write (``initial $readmemh("weights_l.hex", weights_l)``), and the top streams only the other
writes (biases, thresholds, neuron parameters, tables: a few hundred words). After the configuration phase every
memory and register holds what the plain top leaves in it; only the load is shorter. The co-simulation and
``snncosim verilog`` keep the plain design; tests/test_fpga.py runs this one in Verilator against the golden model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from golden.core.files import write_text_atomic
from golden.core.network import IntegerNetwork
from golden.core.register_map import REGION_SHIFT, SKIP_WEIGHT_BASE

from ..config import EngineConfig
from ..config_image import address_runs, config_words, write_top_roms
from ..verilog import engine_verilog, fpga_top_verilog

__all__ = ["PreloadedDesign", "preloaded_design", "write_preloaded_design", "strip_zero_initialisers"]

_ZERO_INIT = re.compile(r"^[ \t]*initial begin\n(?:[ \t]+\S+ ?\[\d+\] = \d+'[hd]0+;\n)+[ \t]*end\n", re.M)


@dataclass
class PreloadedDesign:
    engine: str  # snn_engine.v
    top: str  # snn_top.v
    memories: dict  # memory name -> list of words (its contents)
    widths: dict  # memory name -> word width
    rest: list  # the configuration writes the top still streams


def _weight_memory_of(addr: int, config: EngineConfig) -> tuple[str, int] | None:
    """(memory name, word index) of a configuration write into a weight memory, else None."""
    region, index = addr >> REGION_SHIFT, addr & ((1 << REGION_SHIFT) - 1)
    if region >= 4 * config.n_layers or region % 4 != 0:
        return None
    l = region // 4 + 1
    if index < config.weight_words(l):
        return f"weights_{l}", index
    if config.skip_of(l) is not None and index & SKIP_WEIGHT_BASE \
            and index - SKIP_WEIGHT_BASE < config.skip_weight_words(l):
        return f"skip_weights_{l}", index - SKIP_WEIGHT_BASE
    return None


def strip_zero_initialisers(text: str) -> str:
    """Verilog without its all-zero memory initial blocks (hw.flow's module note says why that is safe here)."""
    return _ZERO_INIT.sub("", text)


def preloaded_design(net: IntegerNetwork, config: EngineConfig) -> PreloadedDesign:
    words = config_words(net, config)
    memories: dict[str, list[int]] = {}
    depths, widths = {}, {}
    for l in range(1, config.n_layers + 1):
        widths[f"weights_{l}"], depths[f"weights_{l}"] = config.lanes * config.weight_bits, config.weight_words(l)
        if config.skip_of(l) is not None:
            widths[f"skip_weights_{l}"] = config.lanes * config.weight_bits
            depths[f"skip_weights_{l}"] = config.skip_weight_words(l)
    rest = []
    for addr, data in words:
        target = _weight_memory_of(addr, config)
        if target is None:
            rest.append((addr, data))
            continue
        name, index = target
        contents = memories.setdefault(name, [0] * depths[name])
        contents[index] = data & ((1 << widths[name]) - 1)
    engine = strip_zero_initialisers(engine_verilog(config))
    for name in memories:
        declaration = re.search(rf"^([ \t]*)reg \[{widths[name] - 1}:0\] {name} \[{depths[name] - 1}:0\];\n",
                                engine, re.M)
        if declaration is None:
            raise RuntimeError(f"no declaration of memory {name} in the engine's Verilog")
        engine = (engine[:declaration.end()] + f'{declaration[1]}initial $readmemh("{name}.hex", {name});\n'
                  + engine[declaration.end():])
    top = fpga_top_verilog(config, len(rest), len(address_runs(rest)))
    return PreloadedDesign(engine, top, memories, widths, rest)


def write_preloaded_design(design: PreloadedDesign, config: EngineConfig, folder: Path) -> list[Path]:
    """``snn_engine.v``, ``snn_top.v``, ``NAME.hex`` per weight memory and the top's ROMs, into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [write_text_atomic(folder / "snn_engine.v", design.engine),
               write_text_atomic(folder / "snn_top.v", design.top)]
    for name, contents in design.memories.items():
        digits = -(-design.widths[name] // 4)
        written.append(write_text_atomic(folder / f"{name}.hex", "".join(f"{w:0{digits}X}\n" for w in contents)))
    written += write_top_roms(design.rest, folder, config.cfg_data_bits)
    return written
