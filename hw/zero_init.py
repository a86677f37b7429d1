"""Verilog of an Amaranth design whose all-zero memory initialisers are written by Python, not by Amaranth + Yosys.

Every ``amaranth.lib.memory.Memory`` carries an initial value (zeros for ``init=[]``). Amaranth's RTLIL back end
builds it bit by bit (one netlist object per bit) and hands it to Yosys, whose ``write_verilog`` prints one
``mem[i] = 0;`` line per word: for a 784-1200-1200-10 engine that was over a minute, growing with the weight
memories (issue 14). This module leaves the all-zero initialisers out of the RTLIL and prints the same lines
itself, right after the memory's declaration, exactly as Yosys wrote them::

    reg [47:0] weights_1 [25087:0];
    initial begin
      weights_1[0] = 48'h000000000000;
      ...
    end

so the Verilog text is byte for byte the one of the plain conversion. (A ``for`` loop would be shorter, but
Yosys's Verilog front end unrolls a 25,000-iteration initial loop in minutes; per-word lines read in seconds.)
Memories with non-zero contents (ROM tables) keep Amaranth's initialiser.

The elision hooks ``amaranth.back.rtlil.ModuleEmitter.emit_memory`` (Amaranth 0.5) for the duration of one
conversion; if that hook point is missing the plain conversion is used, so a newer Amaranth stays correct, only
slower.
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager

from amaranth.back import rtlil
from amaranth.back import verilog as amaranth_verilog

__all__ = ["convert_with_fast_zero_init"]

_LOCK = threading.Lock()
# one memory declaration of Yosys's write_verilog: ``reg [W-1:0] name [D-1:0];`` (name plain or escaped)
_DECLARATION = re.compile(r"^(?P<indent>[ \t]*)reg \[(?P<msb>\d+):0\] (?P<name>\\\S+ |[A-Za-z_][\w$]*) ?"
                          r"\[(?P<last>\d+):0\];\n", re.M)


@contextmanager
def _zero_initialisers_elided(elided: set[tuple[str, int, int]]):
    """While active, RTLIL conversion skips ``$meminit_v2`` cells of all-zero memories and records
    ``(memid, width, depth)`` of each in ``elided``."""
    original = getattr(getattr(rtlil, "ModuleEmitter", None), "emit_memory", None)
    if original is None:
        yield False
        return

    def emit_memory(self, cell_idx, cell):
        if any(cell.init):
            return original(self, cell_idx, cell)
        elided.add((str(self.memories[cell_idx].memid), int(cell.width), int(cell.depth)))

    with _LOCK:
        rtlil.ModuleEmitter.emit_memory = emit_memory
        try:
            yield True
        finally:
            rtlil.ModuleEmitter.emit_memory = original


def _plain_name(name: str) -> str:
    """``\\acc$15 `` (escaped Verilog) or ``\\acc$15`` (RTLIL id) -> ``acc$15``."""
    return name.strip().removeprefix("\\")


def _add_zero_initialisers(text: str, elided: set[tuple[str, int, int]]) -> str:
    wanted = {(_plain_name(memid), width, depth) for memid, width, depth in elided}
    pieces, last, found = [], 0, set()
    for match in _DECLARATION.finditer(text):
        width, depth = int(match["msb"]) + 1, int(match["last"]) + 1
        if (_plain_name(match["name"]), width, depth) not in wanted:
            continue
        if text.startswith("initial", match.end() + len(match["indent"])):
            continue  # Yosys wrote an initialiser: a memory of the same name with non-zero contents
        indent, name = match["indent"], match["name"]
        found.add((_plain_name(name), width, depth))
        zero = "32'd0;\n" if width == 32 else f"{width}'h{'0' * ((width + 3) // 4)};\n"  # as Yosys prints 0
        pieces += [text[last:match.end()], f"{indent}initial begin\n",
                   "".join(f"{indent}  {name}[{i}] = {zero}" for i in range(depth)), f"{indent}end\n"]
        last = match.end()
    if found != wanted:  # a declaration Yosys wrote in another form: never drop an initialiser silently
        raise RuntimeError(f"zero-initialised memories without a declaration in the Verilog: {wanted - found}")
    return "".join(pieces) + text[last:]


def convert_with_fast_zero_init(elaboratable, name: str, **kwargs) -> str:
    """``amaranth.back.verilog.convert(elaboratable, name=name, **kwargs)`` with all-zero memory initialisers
    printed by Python (see the module note)."""
    elided: set[tuple[str, int, int]] = set()
    with _zero_initialisers_elided(elided):
        text = amaranth_verilog.convert(elaboratable, name=name, **kwargs)
    return _add_zero_initialisers(text, elided) if elided else text
