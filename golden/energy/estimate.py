"""Energy of a run on a target chip model (SPEC §7): exact operation counts × cited energy per operation.

A **chip model** is a YAML file (``golden/energy/chips/*.yaml`` ship with the package; users pass a path). Every number in
it carries a unit, a citation (``source`` + ``where``), the kind of evidence behind it and whether we checked it
against the primary paper. A model has a **scope**:

* ``per_op``: one price per operation kind (AC, MAC, neuron update, spike, memory words) — the estimate is the
  sum over kinds, plus static power × time where the model has both a static power and a clock.
* ``all_in``: one chip-level figure (e.g. TrueNorth's 26 pJ per synaptic event, total chip power divided by the
  event rate) that already contains every other cost. Combining it with any per-term number double counts, so
  the schema rejects that.

A term the model cannot price says so explicitly: ``not_applicable`` (the chip has no such operation) or
``not_available`` (no cited figure); using such a term with a non-zero count raises :class:`EnergyTermError`.
``included_in: <term>`` says the cost is part of another term's figure (priced at 0 here, and labelled so);
``excluded`` says the estimate deliberately leaves the cost out (listed in every result as an exclusion, so the
figure is a lower bound). Nothing missing is ever treated as zero without one of these statements.

Arithmetic is exact: numbers are read from the YAML text as :class:`fractions.Fraction` (``23.6`` is 236/10, not
the nearest binary float), counts are Python integers, and every energy is a Fraction in pJ. ``float()`` of a
Fraction is correctly rounded, so anyone who recomputes Σ count × price from the saved counts and the YAML gets the
same float to the last digit.

Counters (``golden.core.counters.COUNTER_NAMES``) map onto the priced terms as ``acs → ac``, ``macs → mac``,
``neuron_updates → neuron_update``, ``spikes → spike``, ``weight_reads → weight_read``, ``state_reads →
state_read``, ``state_writes → state_write``; ``cycles`` give the static energy (static power × cycles / clock);
``saturations`` are not priced. Memory terms are priced per access of ``per_bits`` bits: one engine word of
``P × weight_bits`` (weights) or ``P × membrane_bits`` (membranes) bits costs ``ceil(word_bits / per_bits)``
accesses.

The ANN baseline on the same chip: the ANN's MACs of the same network (one per synapse and image, the SPEC §5
comparison count of :func:`golden.core.macs.ann_macs_per_layer`, residual shortcuts included) priced as ``mac``, plus
one weight operand read per MAC, packed ``per_bits / weight_bits`` to an access (``ceil(macs_l · weight_bits /
per_bits)`` accesses per layer and image). Activation reads/writes are not counted on either side (the SNN's
spike-mask words are not counted either); see ``docs/energy.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import yaml

from golden.core.counters import COUNTER_NAMES
from golden.core.errors import SnnCosimError
from golden.core.trace import Trace

__all__ = [
    "ChipModelError", "EnergyTermError", "TERMS", "TERM_COUNTER", "Price", "ChipModel", "WordWidths", "Counts",
    "Energy", "ChipComparison", "load_chip", "load_chips", "shipped_chip_names", "snn_energy", "ann_energy",
    "compare_chips", "ac_per_mac", "fmt_energy", "energy_table",
]

FORMAT_NAME = "snncosim-chip-model"
FORMAT_VERSION = 1

#: Priced operation terms, in report order, and the counter each one prices.
TERMS = ("ac", "mac", "neuron_update", "spike", "weight_read", "state_read", "state_write")
TERM_COUNTER = {
    "ac": "acs", "mac": "macs", "neuron_update": "neuron_updates", "spike": "spikes",
    "weight_read": "weight_reads", "state_read": "state_reads", "state_write": "state_writes",
}
MEMORY_TERMS = ("weight_read", "state_read", "state_write")
SETTINGS = ("static_power", "clock")
STATUSES = ("value", "included", "excluded", "not_applicable", "not_available")
EVIDENCE = ("measured", "simulated", "datasheet", "estimate", "derived", "secondary-source")
SCOPES = ("per_op", "all_in")

# unit → factor to the canonical unit (pJ, mW, MHz), exact
ENERGY_UNITS = {"fJ": Fraction(1, 1000), "pJ": Fraction(1), "nJ": Fraction(1000), "uJ": Fraction(10**6),
                "µJ": Fraction(10**6), "mJ": Fraction(10**9), "J": Fraction(10**12)}
POWER_UNITS = {"nW": Fraction(1, 10**6), "uW": Fraction(1, 1000), "µW": Fraction(1, 1000), "mW": Fraction(1),
               "W": Fraction(1000)}
FREQ_UNITS = {"Hz": Fraction(1, 10**6), "kHz": Fraction(1, 1000), "MHz": Fraction(1), "GHz": Fraction(1000)}
_UNITS_OF = {"static_power": ("power", POWER_UNITS, "mW"), "clock": ("frequency", FREQ_UNITS, "MHz")}
_CANONICAL_ENERGY = ("energy", ENERGY_UNITS, "pJ")

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


class ChipModelError(SnnCosimError):
    """A chip-model YAML file is missing, malformed, or breaks the schema (the message names file and field)."""


class EnergyTermError(SnnCosimError):
    """A count needs a term that the chip model marks not_applicable / not_available."""

    def __init__(self, message: str, chip: str = "", term: str = "", status: str = "", reason: str = ""):
        super().__init__(message)
        self.chip, self.term, self.status, self.reason = chip, term, status, reason

    @property
    def short(self) -> str:
        """E.g. ``mac not applicable``."""
        return f"{self.term} {self.status.replace('_', ' ')}" if self.term else str(self)


# --------------------------------------------------------------------------------------------- exact YAML
class _Exact(Fraction):
    """A number read from YAML text exactly; remembers the text for messages."""

    text: str

    def __new__(cls, text: str):
        self = super().__new__(cls, text)
        self.text = text
        return self

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


class _ExactLoader(yaml.SafeLoader):
    """SafeLoader whose ints and floats become exact Fractions of the literal text."""


def _construct_exact(loader: yaml.SafeLoader, node: yaml.Node):
    text = loader.construct_scalar(node).replace("_", "")
    try:
        return _Exact(text)
    except (ValueError, ZeroDivisionError):
        # .inf, .nan, 0x…, 0o…, sexagesimal: keep as text, the schema check rejects it by name
        return f"<not a finite decimal number: {text}>"


_ExactLoader.add_constructor("tag:yaml.org,2002:float", _construct_exact)
_ExactLoader.add_constructor("tag:yaml.org,2002:int", _construct_exact)


def _is_number(x) -> bool:
    return isinstance(x, Fraction) and not isinstance(x, bool)


def _text(x: Fraction) -> str:
    if isinstance(x, _Exact):
        return x.text
    if x.denominator == 1:
        return str(x.numerator)
    return _decimal(x)


def _decimal(x: Fraction, digits: int = 12) -> str:
    """Exact decimal expansion when it terminates within ``digits`` places, else a rounded one."""
    sign = "-" if x < 0 else ""
    x = abs(x)
    whole, rest = divmod(x.numerator, x.denominator)
    out = []
    for _ in range(digits):
        if not rest:
            break
        rest *= 10
        d, rest = divmod(rest, x.denominator)
        out.append(str(d))
    if rest:  # non-terminating: fall back to a rounded float rendering
        return f"{sign}{float(x):.{digits}g}"
    return sign + str(whole) + ("." + "".join(out) if out else "")


# --------------------------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class Price:
    """One term (or setting) of a chip model.

    ``status`` is ``value`` (``value`` holds the price in pJ per operation, mW for static_power, MHz for clock),
    ``included`` (part of term ``included_in``), ``excluded``, ``not_applicable`` or ``not_available`` (``reason``
    says why). ``per_bits`` (memory terms): the price is per access of that many bits."""

    term: str
    status: str
    value: Fraction | None = None
    written: str = ""  # as written in the file, e.g. "23.6 pJ" or "int8_mult + int32_add = 0.3 pJ"
    per_bits: int | None = None
    included_in: str | None = None
    reason: str = ""
    source: str = ""  # reference key(s)
    citation: str = ""  # full reference text(s)
    where: str = ""
    evidence: str = ""
    verified: bool = False
    read_in: str = ""
    note: str = ""
    parts: tuple[str, ...] = ()  # primitive names when derived with sum_of

    def describe(self) -> str:
        """One line for listings: the figure and where it comes from, or why there is none."""
        if self.status == "value":
            per = f" per {self.per_bits}-bit access" if self.per_bits else ""
            if self.parts:
                return f"{self.written}{per} [derived from {self.source}{'' if self.verified else ', unverified'}]"
            where = f", {self.where}" if self.where else ""
            flag = "" if self.verified else ", unverified"
            return f"{self.written}{per} [{self.evidence}; {self.source}{where}{flag}]"
        if self.status == "included":
            return f"included in {self.included_in} ({self.reason})"
        return f"{self.status.replace('_', ' ')} ({self.reason})"


@dataclass(frozen=True)
class ChipModel:
    name: str
    title: str
    scope: str
    summary: str
    references: Mapping[str, str]
    prices: Mapping[str, Price]  # every term in TERMS plus static_power and clock
    primitives: Mapping[str, Price] = field(default_factory=dict)
    path: Path | None = None
    shipped: bool = False

    @property
    def label(self) -> str:
        return str(self.path) if self.path is not None else self.name

    @property
    def all_in_term(self) -> str | None:
        if self.scope != "all_in":
            return None
        return next(t for t in TERMS if self.prices[t].status == "value")

    @property
    def has_static(self) -> bool:
        return self.prices["static_power"].status == "value"

    def price_pj(self, term: str, count: int, *, what: str = "") -> Fraction:
        """Price of one operation of ``term`` in pJ (0 for included / excluded terms); raises
        :class:`EnergyTermError` when the term is not applicable / not available and ``count`` is non-zero."""
        p = self.prices[term]
        if p.status == "value":
            return p.value
        if p.status in ("included", "excluded") or count == 0:
            return Fraction(0)
        ctx = f" ({what})" if what else ""
        raise EnergyTermError(
            f"chip model {self.name!r}: {count:,} {TERM_COUNTER.get(term, term)}{ctx} need the term {term!r}, "
            f"which the model marks {p.status.replace('_', ' ')}: {p.reason}", self.name, term, p.status, p.reason)

    def accesses(self, term: str, word_bits: int) -> int:
        """Accesses of ``per_bits`` bits that one engine word of ``word_bits`` bits costs (memory terms)."""
        p = self.prices[term]
        if p.status != "value" or p.per_bits is None:
            return 1
        return -(-word_bits // p.per_bits)

    def describe(self) -> list[str]:
        lines = [f"{self.name} — {self.title} (scope: {self.scope}{', shipped' if self.shipped else ''})"]
        if self.summary:
            lines.append(f"    {self.summary}")
        for term in TERMS + SETTINGS:
            lines.append(f"    {term:<14}{self.prices[term].describe()}")
        for key, ref in self.references.items():
            lines.append(f"    [{key}] {ref}")
        return lines


# --------------------------------------------------------------------------------------------- schema
class _Where:
    def __init__(self, file: str):
        self.file = file

    def error(self, field_: str, msg: str) -> ChipModelError:
        return ChipModelError(f"{self.file}: {field_}: {msg}")


_COMMON_KEYS = {"source", "where", "evidence", "verified", "read_in", "note"}
_VALUE_KEYS = {"value", "unit", "per_bits", "sum_of"} | _COMMON_KEYS
_STATUS_KEYS = {"included_in", "reason", "excluded", "not_applicable", "not_available", "note"}


def _require_str(w: _Where, fld: str, d: Mapping, key: str, *, optional: bool = False) -> str:
    where = f"{fld}.{key}" if fld else key
    if key not in d or d[key] is None:
        if optional:
            return ""
        raise w.error(where, "missing")
    v = d[key]
    if not isinstance(v, str) or not v.strip():
        raise w.error(where, f"must be a non-empty text, got {v!r}")
    return v.strip()


def _parse_quantity(w: _Where, fld: str, d: Mapping, kind: tuple[str, dict, str]) -> tuple[Fraction, str]:
    """``value`` + ``unit`` → (canonical value, written text)."""
    what, units, canonical = kind
    if "value" not in d:
        raise w.error(f"{fld}.value", "missing")
    v = d["value"]
    if isinstance(v, str) and v.startswith("<not a finite"):
        raise w.error(f"{fld}.value", v.strip("<>"))
    if not _is_number(v):
        raise w.error(f"{fld}.value", f"must be a number (the unit goes in {fld}.unit), got {v!r}")
    if v < 0:
        raise w.error(f"{fld}.value", f"must not be negative, got {_text(v)}")
    if "unit" not in d or d["unit"] is None:
        raise w.error(f"{fld}.unit", f"missing: a {what} needs a unit, one of {', '.join(units)}")
    unit = d["unit"]
    if not isinstance(unit, str) or unit not in units:
        raise w.error(f"{fld}.unit", f"unknown {what} unit {unit!r}; use one of {', '.join(units)}")
    return Fraction(v) * units[unit], f"{_text(v)} {unit}"


def _parse_provenance(w: _Where, fld: str, d: Mapping, refs: Mapping[str, str]) -> dict:
    source = _require_str(w, fld, d, "source")
    keys = [k.strip() for k in source.split(",")]
    for k in keys:
        if k not in refs:
            raise w.error(f"{fld}.source", f"reference {k!r} is not listed under references "
                                            f"(known: {', '.join(refs) or 'none'})")
    evidence = _require_str(w, fld, d, "evidence")
    if evidence not in EVIDENCE:
        raise w.error(f"{fld}.evidence", f"must be one of {', '.join(EVIDENCE)}, got {evidence!r}")
    if "verified" not in d:
        raise w.error(f"{fld}.verified", "missing: say true only if the number was checked in the primary source")
    if not isinstance(d["verified"], bool):
        raise w.error(f"{fld}.verified", f"must be true or false, got {d['verified']!r}")
    return dict(source=source, citation="; ".join(refs[k] for k in keys), evidence=evidence,
                where=_require_str(w, fld, d, "where", optional=True), verified=d["verified"],
                read_in=_require_str(w, fld, d, "read_in", optional=True),
                note=_require_str(w, fld, d, "note", optional=True))


def _parse_primitive(w: _Where, name: str, d, refs) -> Price:
    fld = f"primitives.{name}"
    if not isinstance(d, Mapping):
        raise _bare(w, fld, d)
    unknown = set(d) - (_VALUE_KEYS - {"sum_of", "per_bits"})
    if unknown:
        raise w.error(f"{fld}.{sorted(unknown)[0]}", "unknown field")
    value, written = _parse_quantity(w, fld, d, _CANONICAL_ENERGY)
    return Price(term=name, status="value", value=value, written=written, **_parse_provenance(w, fld, d, refs))


def _bare(w: _Where, fld: str, d) -> ChipModelError:
    if _is_number(d):
        return w.error(fld, f"the bare number {_text(d)} has no unit; write {{value: {_text(d)}, unit: ...}} "
                            f"with source, where, evidence and verified")
    return w.error(fld, f"must be a mapping (value/unit/source/... or one of "
                        f"included_in / excluded / not_applicable / not_available with a reason), got {d!r}")


def _parse_price(w: _Where, term: str, d, refs, primitives: Mapping[str, Price]) -> Price:
    fld = f"terms.{term}" if term in TERMS else term
    if d is None:
        raise w.error(fld, "missing (give a value, or say included_in / excluded / not_applicable / not_available "
                           "with a reason)")
    if not isinstance(d, Mapping):
        raise _bare(w, fld, d)
    for status in ("not_applicable", "not_available", "excluded"):
        if status in d:
            extra = set(d) - {status, "note"}
            if extra:
                raise w.error(f"{fld}.{sorted(extra)[0]}", f"cannot be combined with {status}")
            reason = d[status]
            if not isinstance(reason, str) or not reason.strip():
                raise w.error(f"{fld}.{status}", "needs the reason as text")
            return Price(term=term, status=status, reason=reason.strip(),
                         note=_require_str(w, fld, d, "note", optional=True))
    if "included_in" in d:
        extra = set(d) - {"included_in", "reason", "note"}
        if extra:
            raise w.error(f"{fld}.{sorted(extra)[0]}", "cannot be combined with included_in")
        target = d["included_in"]
        if target not in TERMS or target == term:
            raise w.error(f"{fld}.included_in", f"must name another priced term ({', '.join(TERMS)}), got {target!r}")
        return Price(term=term, status="included", included_in=target,
                     reason=_require_str(w, fld, d, "reason"), note=_require_str(w, fld, d, "note", optional=True))
    unknown = set(d) - _VALUE_KEYS
    if unknown:
        raise w.error(f"{fld}.{sorted(unknown)[0]}", "unknown field")
    kind = _UNITS_OF.get(term, _CANONICAL_ENERGY)
    parts: tuple[str, ...] = ()
    if "sum_of" in d:
        if term in SETTINGS:
            raise w.error(f"{fld}.sum_of", "only energy terms can be sums of primitives")
        if "value" in d or "unit" in d:
            raise w.error(f"{fld}.sum_of", "give either value/unit or sum_of, not both")
        names = d["sum_of"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise w.error(f"{fld}.sum_of", "must be a non-empty list of primitive names")
        for n in names:
            if n not in primitives:
                raise w.error(f"{fld}.sum_of", f"unknown primitive {n!r} (known: {', '.join(primitives) or 'none'})")
        value = sum((primitives[n].value for n in names), Fraction(0))
        parts = tuple(names)
        written = " + ".join(names) + f" = {_decimal(value)} pJ"
        prov = dict(source=", ".join(dict.fromkeys(primitives[n].source for n in names)),
                    citation="; ".join(dict.fromkeys(primitives[n].citation for n in names)),
                    where="; ".join(dict.fromkeys(f"{n}: {primitives[n].where}" for n in names)),
                    evidence="derived", verified=all(primitives[n].verified for n in names),
                    read_in="; ".join(dict.fromkeys(primitives[n].read_in for n in names if primitives[n].read_in)),
                    note=_require_str(w, fld, d, "note", optional=True))
        for key in ("source", "evidence", "verified", "where", "read_in"):
            if key in d:
                raise w.error(f"{fld}.{key}", "comes from the primitives of sum_of; do not repeat it")
    else:
        value, written = _parse_quantity(w, fld, d, kind)
        prov = _parse_provenance(w, fld, d, refs)
    per_bits = None
    if term in MEMORY_TERMS:
        if "per_bits" not in d:
            raise w.error(f"{fld}.per_bits", "missing: a memory price is per access of how many bits?")
        pb = d["per_bits"]
        if not _is_number(pb) or pb.denominator != 1 or pb < 1:
            raise w.error(f"{fld}.per_bits", f"must be a positive integer, got {pb!r}")
        per_bits = int(pb)
    elif "per_bits" in d:
        raise w.error(f"{fld}.per_bits", "only memory terms (weight_read, state_read, state_write) have per_bits")
    return Price(term=term, status="value", value=value, written=written, per_bits=per_bits, parts=parts, **prov)


def _parse_model(raw, file: str, path: Path | None, shipped: bool) -> ChipModel:
    w = _Where(file)
    if not isinstance(raw, Mapping):
        raise ChipModelError(f"{file}: not a chip model (expected a YAML mapping)")
    if raw.get("format") != FORMAT_NAME:
        raise w.error("format", f"must be {FORMAT_NAME!r}, got {raw.get('format')!r}")
    if raw.get("version") != FORMAT_VERSION:
        raise w.error("version", f"version {raw.get('version')!r} is not supported (this snncosim reads "
                                 f"{FORMAT_VERSION})")
    known = {"format", "version", "name", "title", "scope", "summary", "references", "primitives", "terms",
             *SETTINGS}
    unknown = set(raw) - known
    if unknown:
        raise w.error(sorted(unknown)[0], "unknown field")
    name = _require_str(w, "", raw, "name")
    if not _NAME_RE.match(name):
        raise w.error("name", f"must be lower-case letters, digits, '_' or '-', got {name!r}")
    title = _require_str(w, "", raw, "title")
    scope = raw.get("scope")
    if scope not in SCOPES:
        raise w.error("scope", f"must be one of {', '.join(SCOPES)}, got {scope!r}")
    refs = raw.get("references")
    if not isinstance(refs, Mapping) or not refs:
        raise w.error("references", "missing: list every cited paper as key: full citation")
    for k, v in refs.items():
        if not isinstance(v, str) or not v.strip():
            raise w.error(f"references.{k}", "must be the full citation text")
    refs = {str(k): v.strip() for k, v in refs.items()}
    prims_raw = raw.get("primitives") or {}
    if not isinstance(prims_raw, Mapping):
        raise w.error("primitives", "must be a mapping of name: {value, unit, source, ...}")
    primitives = {str(n): _parse_primitive(w, str(n), d, refs) for n, d in prims_raw.items()}
    terms_raw = raw.get("terms")
    if not isinstance(terms_raw, Mapping):
        raise w.error("terms", f"missing: give every term ({', '.join(TERMS)})")
    unknown = set(terms_raw) - set(TERMS)
    if unknown:
        raise w.error(f"terms.{sorted(unknown)[0]}", f"unknown term; the terms are {', '.join(TERMS)}")
    prices = {}
    for term in TERMS:
        if term not in terms_raw:
            raise w.error(f"terms.{term}", "missing (give a value, or say included_in / excluded / not_applicable "
                                           "/ not_available with a reason)")
        prices[term] = _parse_price(w, term, terms_raw[term], refs, primitives)
    for setting in SETTINGS:
        if setting not in raw:
            raise w.error(setting, "missing (give a value with unit, or excluded / not_applicable / not_available "
                                   "/ included_in with a reason)")
        prices[setting] = _parse_price(w, setting, raw[setting], refs, primitives)
    # consistency
    for term, p in prices.items():
        fld = f"terms.{term}" if term in TERMS else term
        if p.status == "included":
            target = prices[p.included_in]
            if target.status != "value":
                raise w.error(f"{fld}.included_in", f"{p.included_in!r} has no value to be included in "
                                                    f"(it is {target.status.replace('_', ' ')})")
        if term == "clock" and p.status in ("included", "excluded"):
            raise w.error(fld, "a clock is a value, not_applicable or not_available")
    if prices["static_power"].status == "value" and prices["clock"].status != "value":
        raise w.error("clock", "static_power has a value, so the clock (static energy = power × cycles / clock) "
                               "needs one too")
    if scope == "all_in":
        valued = [t for t in TERMS if prices[t].status == "value"]
        if len(valued) != 1:
            if not valued:
                raise w.error("terms", "scope all_in needs exactly one term with the all-in figure")
            first = valued[0]
            raise w.error(f"terms.{valued[1]}",
                          f"a per-term value cannot be combined with the all-in figure terms.{first} (scope: all_in); "
                          f"say included_in: {first} or not_applicable")
        if prices["static_power"].status == "value":
            raise w.error("static_power", f"a static power cannot be combined with the all-in figure "
                                          f"terms.{valued[0]} (scope: all_in), which contains it")
    return ChipModel(name=name, title=title, scope=scope, summary=str(raw.get("summary") or "").strip(),
                     references=refs, prices=prices, primitives=primitives, path=path, shipped=shipped)


def _chips_dir():
    return resources.files("golden.energy.chips")


def shipped_chip_names() -> list[str]:
    """Names of the chip models shipped in ``golden/energy/chips`` (sorted)."""
    return sorted(p.name[:-5] for p in _chips_dir().iterdir() if p.name.endswith(".yaml"))


def load_chip(spec: str | Path) -> ChipModel:
    """A shipped model by name (``"loihi"``) or a user model from a YAML path."""
    spec_str = str(spec)
    is_path = isinstance(spec, Path) or spec_str.endswith((".yaml", ".yml")) or "/" in spec_str
    if not is_path:
        res = _chips_dir() / f"{spec_str}.yaml"
        if not res.is_file():
            raise ChipModelError(f"no shipped chip model {spec_str!r} (shipped: {', '.join(shipped_chip_names())}); "
                                 f"pass a path to a YAML file for your own")
        text, file, path, shipped = res.read_text(encoding="utf-8"), f"{spec_str}.yaml", None, True
    else:
        path = Path(spec)
        if not path.is_file():
            raise ChipModelError(f"{path}: no such chip-model file")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ChipModelError(f"{path}: cannot read ({exc})") from None
        file, shipped = str(path), False
    try:
        raw = yaml.load(text, Loader=_ExactLoader)  # noqa: S506 — SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ChipModelError(f"{file}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    model = _parse_model(raw, file, path, shipped)
    if shipped and model.name != spec_str:
        raise ChipModelError(f"{file}: name: {model.name!r} differs from the file name")
    return model


def load_chips(specs: Iterable[str | Path] | None = None) -> list[ChipModel]:
    """The given models (names or paths), or every shipped model; names must be unique."""
    models = [load_chip(s) for s in (shipped_chip_names() if specs is None else specs)]
    seen: dict[str, str] = {}
    for m in models:
        if m.name in seen:
            raise ChipModelError(f"{m.label}: name {m.name!r} is already used by {seen[m.name]}")
        seen[m.name] = m.label
    return models


# --------------------------------------------------------------------------------------------- counts
@dataclass(frozen=True)
class WordWidths:
    """What turns engine words into memory accesses: crossbar lanes P and the widths of weights and membranes."""

    lanes: int
    weight_bits: int
    membrane_bits: int

    @classmethod
    def of(cls, network, lanes: int) -> "WordWidths":
        return cls(int(lanes), int(network.weight_bits), int(network.membrane_bits))

    def word_bits(self, term: str) -> int:
        return self.lanes * (self.weight_bits if term == "weight_read" else self.membrane_bits)


@dataclass(frozen=True)
class Counts:
    """Operation counts of ``images`` images: ``per_layer[l][k]`` = counter ``COUNTER_NAMES[k]`` of layer l+1
    summed over images and steps (Python ints), and ``overhead_cycles`` (cycles not spent in any layer: the
    per-image constant ``C_IMAGE``). ``layered`` is False when only run totals were known (one pseudo-layer)."""

    per_layer: tuple[tuple[int, ...], ...]
    images: int
    overhead_cycles: int = 0
    layered: bool = True
    source: str = ""

    def __post_init__(self):
        if self.images < 1:
            raise SnnCosimError(f"counts need at least one image, got {self.images}")
        for row in self.per_layer:
            if len(row) != len(COUNTER_NAMES):
                raise SnnCosimError(f"a counts row has {len(row)} counters, expected {len(COUNTER_NAMES)}")
            if any(v < 0 for v in row):
                raise SnnCosimError("operation counts cannot be negative")

    @classmethod
    def from_trace(cls, trace: Trace, source: str = "") -> "Counts":
        sums = trace.counters.sum(axis=(0, 1))  # [L, 9] int64
        rows = tuple(tuple(int(v) for v in row) for row in sums)
        layer_cycles = sum(r[COUNTER_NAMES.index("cycles")] for r in rows)
        overhead = int(trace.image_cycles.sum()) - layer_cycles
        return cls(rows, trace.n_images, overhead, True, source or str(trace.meta.get("source", "")))

    @classmethod
    def from_totals(cls, totals: Mapping[str, int], images: int, overhead_cycles: int = 0,
                    source: str = "") -> "Counts":
        missing = [n for n in COUNTER_NAMES if n not in totals]
        if missing:
            raise SnnCosimError(f"counter totals lack {', '.join(missing)}")
        return cls((tuple(int(totals[n]) for n in COUNTER_NAMES),), int(images), int(overhead_cycles), False, source)

    @property
    def n_layers(self) -> int:
        return len(self.per_layer)

    def total(self, name: str) -> int:
        k = COUNTER_NAMES.index(name)
        return sum(row[k] for row in self.per_layer)

    def layer(self, index: int, name: str) -> int:
        return self.per_layer[index][COUNTER_NAMES.index(name)]

    @property
    def total_cycles(self) -> int:
        return self.total("cycles") + self.overhead_cycles


# --------------------------------------------------------------------------------------------- energy
@dataclass(frozen=True)
class Energy:
    """Energy of one side (``snn`` or ``ann``) of ``images`` images on one chip model, exact, in pJ.

    ``per_layer[l]`` maps each term of :data:`TERMS` (and ``"static"`` when modelled) to its pJ; ``overhead_static``
    is the static energy of the cycles outside layers. ``excluded`` lists (term, reason) the estimate leaves out
    (non-zero counts priced by an ``excluded`` term, or static energy); ``included`` lists (term, into) costs that
    are inside another term's figure."""

    chip: str
    side: str
    images: int
    per_layer: tuple[Mapping[str, Fraction], ...]
    overhead_static: Fraction | None
    static_modelled: bool
    excluded: tuple[tuple[str, str], ...]
    included: tuple[tuple[str, str], ...]
    counts_source: str = ""

    def term(self, name: str) -> Fraction:
        return sum((row.get(name, Fraction(0)) for row in self.per_layer), Fraction(0))

    @property
    def dynamic_pj(self) -> Fraction:
        return sum((self.term(t) for t in TERMS), Fraction(0))

    @property
    def static_pj(self) -> Fraction | None:
        if not self.static_modelled:
            return None
        return self.term("static") + (self.overhead_static or Fraction(0))

    @property
    def total_pj(self) -> Fraction:
        """Dynamic + static (static only where the model has it; see :attr:`excluded`)."""
        return self.dynamic_pj + (self.static_pj or Fraction(0))

    @property
    def per_image_pj(self) -> Fraction:
        return self.total_pj / self.images

    def layer_total(self, index: int) -> Fraction:
        return sum(self.per_layer[index].values(), Fraction(0))

    def to_dict(self) -> dict:
        """JSON-ready: floats are the correctly rounded values of the exact Fractions; ``*_exact`` are strings."""
        by_term = {t: float(self.term(t)) for t in TERMS}
        return {
            "chip": self.chip, "side": self.side, "images": self.images, "counts_source": self.counts_source,
            "total_pj": float(self.total_pj), "total_pj_exact": str(self.total_pj),
            "per_image_pj": float(self.per_image_pj), "per_image_pj_exact": str(self.per_image_pj),
            "dynamic_pj": float(self.dynamic_pj),
            "static_pj": None if self.static_pj is None else float(self.static_pj),
            "by_term_pj": by_term,
            "per_layer_pj": [float(sum(row.values(), Fraction(0))) for row in self.per_layer],
            "excluded": [{"term": t, "reason": r} for t, r in self.excluded],
            "included": [{"term": t, "in": i} for t, i in self.included],
        }


def _static(chip: ChipModel, cycles: int) -> Fraction:
    """pJ of ``cycles`` at the model's clock: P[mW] × cycles / f[MHz] × 1000."""
    return chip.prices["static_power"].value * cycles / chip.prices["clock"].value * 1000


def _notes(chip: ChipModel, used: Mapping[str, int]) -> tuple[tuple, tuple]:
    excluded, included = [], []
    for term in TERMS:
        p = chip.prices[term]
        if used.get(term, 0) and p.status == "excluded":
            excluded.append((term, p.reason))
        elif used.get(term, 0) and p.status == "included":
            included.append((term, p.included_in))
    sp = chip.prices["static_power"]
    if sp.status == "included":
        included.append(("static", sp.included_in))
    elif sp.status != "value":
        excluded.append(("static", sp.reason))
    return tuple(excluded), tuple(included)


def snn_energy(counts: Counts | Trace, chip: ChipModel, widths: WordWidths) -> Energy:
    """The SNN's energy from its operation counts: Σ_layers Σ_terms count × price (+ static power × cycles / clock
    where the model has both). Raises :class:`EnergyTermError` if a non-zero count needs an unpriced term."""
    if isinstance(counts, Trace):
        counts = Counts.from_trace(counts)
    static = chip.has_static
    rows = []
    used: dict[str, int] = {}
    for index, row in enumerate(counts.per_layer):
        layer = {}
        where = f"layer {index + 1}" if counts.layered else "run totals"
        for term in TERMS:
            n = row[COUNTER_NAMES.index(TERM_COUNTER[term])]
            used[term] = used.get(term, 0) + n
            if term in MEMORY_TERMS:
                n *= chip.accesses(term, widths.word_bits(term))
            layer[term] = n * chip.price_pj(term, n, what=where)
        if static:
            layer["static"] = _static(chip, row[COUNTER_NAMES.index("cycles")])
        rows.append(layer)
    excluded, included = _notes(chip, used)
    return Energy(chip.name, "snn", counts.images, tuple(rows),
                  _static(chip, counts.overhead_cycles) if static else None, static, excluded, included,
                  counts.source)


def ann_energy(macs_per_layer: Sequence[int], chip: ChipModel, weight_bits: int, images: int = 1) -> Energy:
    """The ANN baseline of the same network on ``chip``: per layer and image ``macs_l`` MACs plus
    ``ceil(macs_l · weight_bits / per_bits)`` weight accesses (one weight operand per MAC, packed), × ``images``.
    No static term: the ANN has no cycle count here."""
    rows = []
    used = {"mac": 0, "weight_read": 0}
    for index, macs in enumerate(macs_per_layer):
        macs = int(macs) * images
        p = chip.prices["weight_read"]
        if p.status == "value":
            reads = -(-int(macs_per_layer[index]) * weight_bits // p.per_bits) * images
        else:
            reads = macs
        used["mac"] += macs
        used["weight_read"] += reads
        layer = {t: Fraction(0) for t in TERMS}
        layer["mac"] = macs * chip.price_pj("mac", macs, what=f"ANN layer {index + 1}")
        layer["weight_read"] = reads * chip.price_pj("weight_read", reads, what=f"ANN layer {index + 1}")
        rows.append(layer)
    excluded, included = _notes(chip, used)
    excluded = tuple(e for e in excluded if e[0] != "static") + (("static", "no cycle count for the ANN"),)
    included = tuple(i for i in included if i[0] != "static")
    return Energy(chip.name, "ann", images, tuple(rows), None, False, excluded, included, "ann_macs")


def ac_per_mac(counts: Counts, macs_per_layer: Sequence[int]) -> Fraction:
    """Sengupta et al. 2019's ratio: SNN ACs per image over the ANN's MACs per image (exact)."""
    total_macs = sum(int(m) for m in macs_per_layer)
    if total_macs == 0:
        raise SnnCosimError("the network has no MACs to compare with")
    return Fraction(counts.total("acs"), counts.images * total_macs)


@dataclass(frozen=True)
class ChipComparison:
    """SNN and ANN energy on one chip; ``snn``/``ann`` is None with ``*_unavailable`` saying why."""

    chip: ChipModel
    snn: Energy | None
    ann: Energy | None
    snn_unavailable: str = ""
    ann_unavailable: str = ""
    snn_unavailable_short: str = ""
    ann_unavailable_short: str = ""

    @property
    def ann_over_snn(self) -> Fraction | None:
        """ANN energy / SNN dynamic energy per image (both dynamic; None when either is unavailable)."""
        if self.snn is None or self.ann is None or self.snn.dynamic_pj == 0:
            return None
        return (self.ann.dynamic_pj / self.ann.images) / (self.snn.dynamic_pj / self.snn.images)

    def to_dict(self) -> dict:
        ratio = self.ann_over_snn
        return {"chip": self.chip.name, "scope": self.chip.scope,
                "snn": None if self.snn is None else self.snn.to_dict(), "snn_unavailable": self.snn_unavailable,
                "ann": None if self.ann is None else self.ann.to_dict(), "ann_unavailable": self.ann_unavailable,
                "ann_over_snn_dynamic": None if ratio is None else float(ratio)}


def _why(snn_err: EnergyTermError | None, ann_err: EnergyTermError | None) -> tuple[str, str, str, str]:
    return (str(snn_err or ""), str(ann_err or ""), "" if snn_err is None else snn_err.short,
            "" if ann_err is None else ann_err.short)


def compare_chips(counts: Counts | Trace, macs_per_layer: Sequence[int], chips: Sequence[ChipModel],
                  widths: WordWidths) -> list[ChipComparison]:
    """SNN (from ``counts``) vs ANN (``macs_per_layer`` per image, same number of images) on every chip; a side a
    chip cannot price is recorded with the reason instead of raising."""
    if isinstance(counts, Trace):
        counts = Counts.from_trace(counts)
    out = []
    for chip in chips:
        snn = ann = snn_err = ann_err = None
        try:
            snn = snn_energy(counts, chip, widths)
        except EnergyTermError as exc:
            snn_err = exc
        try:
            ann = ann_energy(macs_per_layer, chip, widths.weight_bits, counts.images)
        except EnergyTermError as exc:
            ann_err = exc
        out.append(ChipComparison(chip, snn, ann, *_why(snn_err, ann_err)))
    return out


def fmt_energy(pj: Fraction | float | None) -> str:
    """Human units: 12.3 pJ, 4.56 nJ, 7.89 µJ, 1.23 mJ, 4.5 J."""
    if pj is None:
        return "n/a"
    x = float(pj)
    for unit, scale in (("J", 1e12), ("mJ", 1e9), ("µJ", 1e6), ("nJ", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g} pJ"


def energy_table(comparisons: Sequence[ChipComparison]) -> list[str]:
    """Plain-text rows for a terminal table: chip, scope, SNN per image, ANN per image, ANN/SNN, exclusions."""
    lines = [f"  {'chip model':<16}{'scope':<8}{'SNN / image':>14}{'ANN / image':>14}{'ANN / SNN':>11}  notes"]
    for c in comparisons:
        snn = fmt_energy(c.snn.per_image_pj) if c.snn is not None else f"n/a ({c.snn_unavailable_short})"
        ann = fmt_energy(c.ann.per_image_pj) if c.ann is not None else "n/a"
        ratio = c.ann_over_snn
        notes = [] if c.snn is None else [f"excl. {t}" for t, _ in c.snn.excluded]
        if c.ann is None and c.ann_unavailable_short:
            notes.append(f"ANN: {c.ann_unavailable_short}")
        lines.append(f"  {c.chip.name:<16}{c.chip.scope:<8}{snn:>14}{ann:>14}"
                     f"{'—' if ratio is None else f'{float(ratio):.3g}x':>11}  {', '.join(notes)}")
    return lines
