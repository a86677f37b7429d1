"""The grid of ``snncosim sweep``: its parameters, the ``--grid KEY=V1,V2`` and YAML grid-file syntax, and the
points it expands to (docs/sweep.md). Torch-free, so a bad grid is refused at once, before anything is imported,
started or written.

A grid is the cartesian product of its axes. ``--grid`` options make one grid; a YAML file (``--grid-file``) holds
one grid (a mapping ``KEY: [values]``) or a list of grids whose points are joined (scikit-learn's ParameterGrid
convention), for combinations that do not share every axis (``coding: [rate]`` with ``T``, ``coding: [fs]`` with
``K``). ``--grid`` axes are added to every grid of the file.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

from golden.core.errors import SnnCosimError

__all__ = ["PARAMETERS", "MODEL_ONLY", "Grid", "GridError", "parse_grid", "check_model_point",
           "check_network_point", "point_label"]

CODINGS = ("rate", "weighted", "fs")
DEFAULT_STEPS = {"rate": 64, "weighted": 32}  # as snncosim run/cosim; FS: exactly L·K steps per image
DEFAULT_PHASES = {"weighted": 4, "fs": 8}
DEFAULT_LANES = 8


class GridError(SnnCosimError):
    """A grid that cannot be run (unknown key, bad value, impossible combination)."""


@dataclass(frozen=True)
class Parameter:
    """One grid key: its value type, range or choices, and whether it is a conversion parameter (then it applies to
    a torch model converted at each point, not to a saved .snn network)."""

    name: str
    kind: type
    help: str
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    model_only: bool = False
    aliases: tuple[str, ...] = ()
    low_open: bool = False  # the range excludes ``low``

    def parse(self, value, where: str):
        """``value`` (text from ``--grid``, or a YAML scalar) as this parameter's type, checked."""
        if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
            raise GridError(f"{where}: {self.name}={value!r} is not a {self._kind_name()}")
        if self.kind is str:
            value = str(value).strip()
            if self.choices and value not in self.choices:
                raise GridError(f"{where}: {self.name}={value!r} is not one of {', '.join(self.choices)}")
            if not value:
                raise GridError(f"{where}: an empty value of {self.name}")
            return value
        try:
            if self.kind is int:
                if isinstance(value, float):
                    raise ValueError
                parsed = int(str(value).strip(), 10)
            else:
                parsed = float(str(value).strip())
                if not math.isfinite(parsed):
                    raise ValueError
        except ValueError:
            wanted = "an integer" if self.kind is int else "a number"
            raise GridError(f"{where}: {self.name}={value!r} is not {wanted}") from None
        below = self.low is not None and (parsed <= self.low if self.low_open else parsed < self.low)
        if below or (self.high is not None and parsed > self.high):
            raise GridError(f"{where}: {self.name}={parsed} is outside {self._range()}")
        return parsed

    def _kind_name(self) -> str:
        return {int: "integer", float: "number", str: "name"}[self.kind]

    def _range(self) -> str:
        if self.low_open:
            return f"({self.low:g}, {self.high:g}]"
        return f"{self.low:g}..{self.high:g}"


PARAMETERS: tuple[Parameter, ...] = (
    Parameter("network", str, "an integer network directory (.snn, from snncosim convert/train)"),
    Parameter("coding", str, "input coding of the conversion (default rate)", choices=CODINGS, model_only=True),
    Parameter("T", int, "time steps per image (default 64 rate, 32 weighted; FS: always L·K)", low=1, high=65535,
              aliases=("steps",)),
    Parameter("K", int, "phases of weighted or FS coding (default 4 weighted, 8 FS)", low=1, high=16,
              model_only=True, aliases=("phases",)),
    Parameter("S", int, "weighted coding: output periods skipped (default 0)", low=0, high=65535, model_only=True,
              aliases=("skip_periods",)),
    Parameter("P", int, "crossbar lanes of the engine (default 8)", low=1, high=64, aliases=("lanes",)),
    Parameter("weight_bits", int, "weight width of the conversion (default 8)", low=2, high=32, model_only=True),
    Parameter("membrane_bits", int, "membrane width of the conversion (default 24)", low=4, high=62,
              model_only=True),
    Parameter("norm", str, "normalisation (default data)", choices=("data", "model", "percentile", "spikenorm"),
              model_only=True),
    Parameter("percentile", float, "for norm=percentile (default 99.9)", low=0.0, high=100.0, model_only=True,
              low_open=True),
    Parameter("neuron", str, "rate coding: neuron model (default if)", choices=("if", "lif"), model_only=True),
    Parameter("reset", str, "rate coding: reset after a spike (default subtract)", choices=("zero", "subtract"),
              model_only=True),
    Parameter("leak_shift", int, "neuron=lif: leak v >>> k (default 4)", low=1, high=61, model_only=True),
    Parameter("seed", int, "seed of the rate encoder (default 0)", low=0, high=2 ** 63 - 1),
)
_BY_NAME = {p.name: p for p in PARAMETERS}
_LOOKUP = {alias.lower().replace("-", "_"): p for p in PARAMETERS for alias in (p.name, *p.aliases)}
MODEL_ONLY = tuple(p.name for p in PARAMETERS if p.model_only)
RATE_ONLY = ("neuron", "reset", "leak_shift")


def parameter(key: str, where: str) -> Parameter:
    """The parameter a grid key names (case and ``-``/``_`` do not matter; ``steps``, ``lanes``, ``phases`` and
    ``skip_periods`` are the long names of T, P, K and S)."""
    found = _LOOKUP.get(str(key).strip().lower().replace("-", "_"))
    if found is None:
        raise GridError(f"{where}: unknown key {key!r}; the keys are {', '.join(p.name for p in PARAMETERS)} "
                        f"(docs/sweep.md)")
    return found


@dataclass(frozen=True)
class Grid:
    """The points of a sweep (each a dict from canonical key to value, only the keys its grid names) and the keys
    in order of first appearance."""

    points: tuple[dict, ...]
    keys: tuple[str, ...]

    def values(self, key: str) -> list:
        seen = []
        for point in self.points:
            if key in point and point[key] not in seen:
                seen.append(point[key])
        return seen

    @property
    def swept(self) -> tuple[str, ...]:
        """The keys that take more than one value (or are missing from some points)."""
        return tuple(k for k in self.keys if len(self.values(k)) > 1 or any(k not in p for p in self.points))

    @property
    def uses_networks(self) -> bool:
        return "network" in self.keys


def _axes_from_options(options: list[str]) -> dict:
    axes: dict = {}
    for option in options:
        where = f"--grid {option}"
        key, sep, text = option.partition("=")
        if not sep or not key.strip():
            raise GridError(f"{where}: expected KEY=VALUE[,VALUE...], e.g. --grid T=32,64")
        param = parameter(key, where)
        if param.name in axes:
            raise GridError(f"{where}: {param.name} is given twice; list all its values in one --grid "
                            f"{param.name}=A,B")
        items = [item for item in text.split(",")]
        if any(not item.strip() for item in items):
            raise GridError(f"{where}: an empty value (values are separated by single commas)")
        axes[param.name] = _checked_values(param, items, where)
    return axes


def _checked_values(param: Parameter, items: list, where: str) -> list:
    values = [param.parse(item, where) for item in items]
    if not values:
        raise GridError(f"{where}: {param.name} has no values")
    for value in values:
        if values.count(value) > 1:
            raise GridError(f"{where}: {param.name}={value} appears twice")
    return values


def _grids_from_file(path: Path) -> list[dict]:
    import yaml

    where = f"--grid-file {path}"
    if not path.is_file():
        raise GridError(f"{where}: no such file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise GridError(f"{where}: not valid YAML{line}: {getattr(exc, 'problem', None) or exc}") from None
    except UnicodeDecodeError:
        raise GridError(f"{where}: not a text file") from None
    if isinstance(raw, dict) and set(raw) == {"grid"}:
        raw = raw["grid"]
    grids = raw if isinstance(raw, list) else [raw]
    if not grids:
        raise GridError(f"{where}: the list of grids is empty")
    out = []
    for number, grid in enumerate(grids, 1):
        at = where if len(grids) == 1 else f"{where}, grid {number}"
        if not isinstance(grid, dict) or not grid:
            raise GridError(f"{at}: expected a mapping KEY: [VALUES] (e.g. 'T: [32, 64]'), got "
                            f"{type(grid).__name__ if grid is not None else 'nothing'}")
        axes: dict = {}
        for key, values in grid.items():
            param = parameter(key, at)
            if param.name in axes:
                raise GridError(f"{at}: {param.name} is given twice")
            axes[param.name] = _checked_values(param, values if isinstance(values, list) else [values], at)
        out.append(axes)
    return out


def parse_grid(options: list[str] | None, grid_file: str | Path | None) -> Grid:
    """The points of ``--grid`` options and a YAML ``grid_file`` (either or both; neither: one point of defaults).
    Raises :class:`GridError` (one line) for anything that cannot run; model combinations are checked here
    (:func:`check_model_point`), network ones once the networks are read (:func:`check_network_point`)."""
    cli_axes = _axes_from_options(list(options or []))
    grids = _grids_from_file(Path(grid_file)) if grid_file is not None else [{}]
    points: list[dict] = []
    keys: list[str] = []
    for axes in grids:
        twice = sorted(set(axes) & set(cli_axes))
        if twice:
            raise GridError(f"--grid {twice[0]}: the grid file gives {twice[0]} too; give it in one place")
        merged = {**axes, **cli_axes}
        keys += [k for k in merged if k not in keys]
        for combination in itertools.product(*merged.values()):
            point = dict(zip(merged, combination))
            if point in points:
                raise GridError(f"the point {point_label(point)} appears in two grids of the grid file; each point "
                                f"runs once")
            points.append(point)
    uses_networks = "network" in keys
    if uses_networks:
        given = [k for k in keys if k in MODEL_ONLY]
        if given:
            raise GridError(f"--grid {', '.join(given)}: conversion parameters apply to a torch model (--model, "
                            f"converted at each point), not to .snn networks (they carry their coding, K and widths)")
        if any("network" not in p for p in points):
            raise GridError("every grid must name its networks when one does (a sweep runs .snn networks or a torch "
                            "model, not both)")
    else:
        for point in points:
            problem = check_model_point(point)
            if problem:
                raise GridError(f"the point {point_label(point) or '(defaults)'} cannot run: {problem}; split the "
                                f"grid (a grid file may list several grids, docs/sweep.md)")
    return Grid(tuple(points), tuple(k for k in (p.name for p in PARAMETERS) if k in keys))


def check_model_point(point: dict) -> str | None:
    """Why a point of a torch-model sweep cannot be converted and run (None when it can): the rules of
    ``snncosim convert``/``run`` for one combination."""
    coding = point.get("coding", "rate")
    norm = point.get("norm", "data")
    if coding == "fs" and "T" in point:
        return "T does not apply to fs coding (an FS network takes exactly L·K steps per image; set K)"
    if coding == "rate" and ("K" in point or "S" in point):
        return "K and S belong to weighted coding (and K to fs), not to rate coding"
    if coding == "fs" and "S" in point:
        return "S (skipped periods) applies to weighted coding only"
    given_neuron = [k for k in RATE_ONLY if k in point]
    if coding != "rate" and given_neuron:
        return f"{coding} coding fixes its neurons; {', '.join(given_neuron)} apply to rate coding"
    if coding == "fs" and norm != "data":
        return f"FS conversion fits its own per-layer scale; norm={norm} does not apply to it"
    if norm == "spikenorm" and coding != "rate":
        return "Spike-Norm is a rate-coding method"
    if "percentile" in point and norm != "percentile":
        return "percentile applies to norm=percentile"
    if "leak_shift" in point and point.get("neuron", "if") != "lif":
        return "leak_shift applies to neuron=lif"
    if point.get("neuron") == "lif" and point.get("leak_shift", 4) >= point.get("membrane_bits", 24):
        return "leak_shift must be below membrane_bits"
    if coding == "weighted":
        steps, phases, skip = point.get("T", DEFAULT_STEPS["weighted"]), point.get("K", 4), point.get("S", 0)
        if skip * phases >= steps:
            return f"weighted spikes need S·K < T (output integration starts after S·K steps), got S={skip}, " \
                   f"K={phases}, T={steps}"
    return None


def check_network_point(point: dict, network) -> str | None:
    """Why a point of a .snn sweep cannot run ``network`` (None when it can)."""
    if "T" in point and network.is_fs and point["T"] != network.fs_latency:
        return f"T={point['T']}: an FS network takes exactly L·K = {network.fs_latency} steps per image"
    if network.input_coding == "weighted" and "T" in point and network.skip_periods * network.phases >= point["T"]:
        return (f"T={point['T']}: the weighted network skips S·K = {network.skip_periods * network.phases} steps; "
                f"T must be larger")
    return None


def point_label(point: dict) -> str:
    """``coding=rate, T=32`` (the keys in the canonical order)."""
    return ", ".join(f"{name}={point[name]}" for name in _BY_NAME if name in point)
