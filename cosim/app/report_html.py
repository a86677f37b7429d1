"""A self-contained HTML report of one run directory (``snncosim report RUN_DIR``).

:func:`write_report` reads what the main job left in the run directory and writes ``report.html`` (every plot is
a PNG embedded as base64: the file can be mailed or archived alone) and ``energy.json`` (the energy figures, exact
values as fractions next to their floats). Layout read (every file but ``summary.json`` is optional)::

    summary.json              the JobResult of cosim/app/job.py
    network.snn/              the IntegerNetwork (layer shapes for the ANN's MACs, widths for memory words)
    golden_trace.npz          golden Trace of the co-simulated images
    rtl_trace.npz             RTL Trace of the same images
    curves.json               {coding: {steps, accuracy, spikes_per_image, acs_per_image}, "ann_accuracy": x}
    traces/<coding>_golden.npz  golden Trace of another input coding
    fpga.json                 the figures of ``snncosim fpga RUN_DIR`` (resources, clock, time per image)

Sections: verdict (with the first divergence), the run's figures, accuracy and ACs vs time step per coding, a
spike raster golden vs RTL of one image (the image of the first divergence, if any, divergences marked), spikes
and ACs per layer, energy per chip model (SNN vs ANN, bar chart + tables), the FPGA figures (when
``snncosim fpga`` ran on the directory) and the chip models' sources.
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from golden.core.counters import COUNTER_NAMES
from golden.core.cycle_model import C_IMAGE
from golden.core.errors import SnnCosimError
from golden.core.files import OUTPUT_MARKER, require_complete, write_text_atomic
from golden.core.macs import ann_macs_per_layer
from golden.core.network import IntegerNetwork
from golden.core.trace import Comparison, Trace, compare
from golden.energy import estimate as E

__all__ = ["RunData", "load_run", "run_energy", "write_report"]


# --------------------------------------------------------------------------------------------- loading
@dataclass
class EnergySet:
    """One set of counts to price: a label, the coding, the counts and where they come from."""

    key: str
    label: str
    coding: str
    counts: E.Counts
    layer_sizes: list[int] | None = None


@dataclass
class RunData:
    path: Path
    summary: dict
    network: object | None = None
    golden: Trace | None = None
    rtl: Trace | None = None
    curves: dict | None = None
    coding_traces: dict[str, Trace] = field(default_factory=dict)
    comparison: Comparison | None = None
    notes: list[str] = field(default_factory=list)  # optional files missing or unreadable

    @property
    def options(self) -> dict:
        return self.summary.get("options") or {}

    @property
    def coding(self) -> str:
        if self.network is not None:
            return str(self.network.input_coding)
        for t in (self.golden, self.rtl):
            if t is not None and t.meta.get("input_coding"):
                return str(t.meta["input_coding"])
        return "rate"

    @property
    def lanes(self) -> int:
        for t in (self.rtl, self.golden):
            if t is not None and t.meta.get("lanes"):
                return int(t.meta["lanes"])
        return int(self.options.get("lanes", 8))

    def word_widths(self) -> E.WordWidths:
        if self.network is not None:
            return E.WordWidths.of(self.network, self.lanes)
        return E.WordWidths(self.lanes, int(self.options.get("weight_bits", 8)),
                          int(self.options.get("membrane_bits", 24)))

    def ann_macs_per_layer(self) -> list[int] | None:
        if self.network is not None:
            return ann_macs_per_layer(self.network)
        if self.summary.get("ann_macs_per_image"):
            return [int(self.summary["ann_macs_per_image"])]
        return None


def _optional_trace(path: Path, notes: list[str]) -> Trace | None:
    if not path.is_file():
        return None
    try:
        return Trace.load(path)
    except SnnCosimError as exc:
        notes.append(f"{path.name}: not read ({exc})")
        return None


def load_run(run_dir: str | Path, *, in_progress: bool = False) -> RunData:
    """Read a run directory; a missing or damaged optional file becomes a note, never an error. A run directory
    marked incomplete (failed or interrupted) is refused, unless ``in_progress`` (the job's own staging
    directory, while it writes the report)."""
    path = Path(run_dir)
    if not path.is_dir():
        raise SnnCosimError(f"{path}: no such run directory")
    if (path / OUTPUT_MARKER).is_file() and not in_progress:  # run directories older than the marker have none
        require_complete(path, "run", "run directory")  # refuses failed, interrupted and foreign outputs
    summary_path = path / "summary.json"
    if not summary_path.is_file():
        raise SnnCosimError(f"{path}: not a snncosim run directory (no summary.json; 'snncosim run --out DIR' "
                            f"writes one)")
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, ValueError) as exc:
        raise SnnCosimError(f"{summary_path}: not readable JSON ({exc})") from None
    if not isinstance(summary, dict):
        raise SnnCosimError(f"{summary_path}: expected a JSON object")
    run = RunData(path=path, summary=summary)
    net_path = path / "network.snn"
    if net_path.exists():
        try:
            run.network = IntegerNetwork.load(net_path)
        except SnnCosimError as exc:
            run.notes.append(f"network.snn: not read ({exc})")
    else:
        run.notes.append("network.snn: missing (ANN MACs from summary.json, no per-layer ANN figures)")
    run.golden = _optional_trace(path / "golden_trace.npz", run.notes)
    run.rtl = _optional_trace(path / "rtl_trace.npz", run.notes)
    curves_path = path / "curves.json"
    if curves_path.is_file():
        try:
            curves = json.loads(curves_path.read_text())
            if not isinstance(curves, dict):
                raise ValueError("expected a JSON object")
            run.curves = curves
        except (OSError, ValueError) as exc:
            run.notes.append(f"curves.json: not read ({exc})")
    traces_dir = path / "traces"
    if traces_dir.is_dir():
        for p in sorted(traces_dir.glob("*_golden.npz")):
            t = _optional_trace(p, run.notes)
            if t is not None:
                run.coding_traces[p.name[: -len("_golden.npz")]] = t
    if run.golden is not None and run.rtl is not None:
        try:
            run.comparison = compare(run.golden, run.rtl)
        except SnnCosimError as exc:
            run.notes.append(f"golden and RTL traces not comparable: {exc}")
    return run


def _sizes(trace: Trace) -> list[int]:
    return [int(s.shape[-1]) for s in trace.spikes]


def energy_sets(run: RunData) -> list[EnergySet]:
    """The counts the report prices: the test part (golden totals), the co-simulated images (RTL counters when
    the RTL ran, else golden) and every extra coding's golden trace."""
    coding = run.coding
    sets = []
    totals, n_test = run.summary.get("golden_totals"), run.summary.get("test_images")
    if totals and n_test:
        sets.append(EnergySet("test_golden", f"{coding}: test part, golden ({n_test} images)", coding,
                              E.Counts.from_totals(totals, int(n_test), int(n_test) * C_IMAGE, "golden totals")))
    if run.rtl is not None:
        sets.append(EnergySet("cosim_rtl", f"{coding}: co-simulated, RTL counters ({run.rtl.n_images} images)",
                              coding, E.Counts.from_trace(run.rtl, "RTL counters"), _sizes(run.rtl)))
    elif run.golden is not None:
        sets.append(EnergySet("cosim_golden", f"{coding}: golden trace ({run.golden.n_images} images)", coding,
                              E.Counts.from_trace(run.golden, "golden counters"), _sizes(run.golden)))
    for name, trace in run.coding_traces.items():
        sets.append(EnergySet(f"{name}_golden", f"{name}: golden trace ({trace.n_images} images)", name,
                              E.Counts.from_trace(trace, "golden counters"), _sizes(trace)))
    return sets


def run_energy(run: RunData, chips: list[E.ChipModel]) -> dict:
    """Every energy figure of the run: per set of counts, per chip, SNN vs ANN; plus the AC/MAC ratios."""
    macs = run.ann_macs_per_layer()
    widths = run.word_widths()
    net_sizes = None if run.network is None else run.network.layer_sizes[1:]
    out = {"geometry": vars(widths), "ann_macs_per_layer": macs, "sets": []}
    for s in energy_sets(run):
        same_shape = macs is not None and (s.layer_sizes is None or net_sizes is None or s.layer_sizes == net_sizes)
        set_macs = macs if same_shape else None
        comps = []
        for chip in chips:
            snn = ann = snn_err = ann_err = None
            try:
                snn = E.snn_energy(s.counts, chip, widths)
            except E.EnergyTermError as exc:
                snn_err = exc
            if set_macs is None:
                ann_err = E.EnergyTermError("no ANN MAC count for this network shape")
            else:
                try:
                    ann = E.ann_energy(set_macs, chip, widths.weight_bits, 1)
                except E.EnergyTermError as exc:
                    ann_err = exc
            comps.append(E.ChipComparison(chip, snn, ann, *E._why(snn_err, ann_err)))
        ratio = None if set_macs is None else E.ac_per_mac(s.counts, set_macs)
        layer_ratio = None
        if set_macs is not None and s.counts.layered and len(set_macs) == s.counts.n_layers:
            layer_ratio = [None if m == 0 else Fraction(s.counts.layer(i, "acs"), s.counts.images * m)
                           for i, m in enumerate(set_macs)]
        out["sets"].append({"set": s, "comparisons": comps, "ac_per_mac": ratio, "ac_per_mac_by_layer": layer_ratio})
    return out


def _energy_json(run: RunData, figures: dict, chips: list[E.ChipModel]) -> dict:
    sets = []
    for entry in figures["sets"]:
        s = entry["set"]
        sets.append({
            "key": s.key, "label": s.label, "coding": s.coding, "images": s.counts.images,
            "counts_source": s.counts.source,
            "counts_per_layer": [dict(zip(COUNTER_NAMES, row)) for row in s.counts.per_layer],
            "overhead_cycles": s.counts.overhead_cycles,
            "ac_per_mac": None if entry["ac_per_mac"] is None else float(entry["ac_per_mac"]),
            "ac_per_mac_exact": None if entry["ac_per_mac"] is None else str(entry["ac_per_mac"]),
            "chips": [c.to_dict() for c in entry["comparisons"]],
        })
    return {"geometry": figures["geometry"], "ann_macs_per_layer": figures["ann_macs_per_layer"],
            "chip_models": {c.name: c.label for c in chips}, "sets": sets,
            "note": "energies in pJ; *_exact are exact fractions (counts x YAML prices); per_image = total / images; "
                    "the ANN side is per image (images = 1)"}


# --------------------------------------------------------------------------------------------- plots
def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def plot_curves(curves: dict, ann_macs: int | None) -> str | None:
    codings = {k: v for k, v in curves.items() if isinstance(v, dict) and v.get("steps") and v.get("accuracy")}
    if not codings:
        return None
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    for i, (name, c) in enumerate(sorted(codings.items())):
        color = _COLORS[i % len(_COLORS)]
        acc = [100 * float(a) for a in c["accuracy"]]
        ax1.plot(c["steps"], acc, marker="o", ms=3, color=color, label=name)
        if c.get("acs_per_image"):
            ax2.plot(c["steps"], [float(a) for a in c["acs_per_image"]], marker="o", ms=3, color=color,
                     label=f"{name}: SNN ACs")
    if curves.get("ann_accuracy") is not None:
        ax1.axhline(100 * float(curves["ann_accuracy"]), color="k", ls="--", lw=1, label="ANN")
    if ann_macs:
        ax2.axhline(ann_macs, color="k", ls="--", lw=1, label="ANN MACs")
    ax1.set_xlabel("time steps T")
    ax1.set_ylabel("accuracy (%)")
    ax1.set_title("accuracy vs time step")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    ax2.set_xlabel("time steps T")
    ax2.set_ylabel("operations per image")
    ax2.set_yscale("log")
    ax2.set_title("synaptic operations vs time step")
    ax2.grid(alpha=0.3, which="major")
    if ax2.lines:
        ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        if max(max(c["steps"]) for c in codings.values()) / max(1, min(min(c["steps"]) for c in codings.values())) > 20:
            ax.set_xscale("log")
    return _png(fig)


RASTER_MAX_STEPS = 256


def plot_raster(golden: Trace, rtl: Trace | None, image: int, first_step: int | None) -> str:
    """Golden (and RTL) spikes of one image, layers stacked as bands of equal height; divergences in red. At most
    :data:`RASTER_MAX_STEPS` steps are drawn: the first ones, or a window around the first divergence."""
    plt = _plt()
    panels = ["golden"] + (["RTL"] if rtl is not None else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.6), squeeze=False, sharey=True,
                             layout="constrained")
    steps = golden.n_steps
    lo = 0
    if steps > RASTER_MAX_STEPS and first_step is not None:
        lo = min(max(0, first_step - 1 - RASTER_MAX_STEPS // 2), steps - RASTER_MAX_STEPS)
    hi = min(steps, lo + RASTER_MAX_STEPS)
    window = slice(lo, hi)
    layers = []
    if golden.input_spikes is not None:
        layers.append(("input", golden.input_spikes[image, window],
                       None if rtl is None or rtl.input_spikes is None else rtl.input_spikes[image, window]))
    for l in range(golden.n_layers):
        layers.append((f"L{l + 1}", golden.spikes[l][image, window],
                       None if rtl is None else rtl.spikes[l][image, window]))
    n_bad = 0
    for ax, title in zip(axes[0], panels):
        for band, (name, g, r) in enumerate(layers):
            own = g if title == "golden" else r
            n = own.shape[-1]
            t, j = np.nonzero(own)
            ax.scatter(lo + t + 1, band + (j + 0.5) / n, s=2, marker="|", color="k", lw=0.6)
            if r is not None:
                bad_t, bad_j = np.nonzero(g != r)
                n_bad += len(bad_t) if title == "golden" else 0
                ax.scatter(lo + bad_t + 1, band + (bad_j + 0.5) / n, s=40, marker="x", color="red", lw=1.5,
                           zorder=3)
            ax.axhline(band, color="0.6", lw=0.6)
        if first_step is not None:
            ax.axvline(first_step, color="red", ls="--", lw=1)
        ax.set_xlim(lo + 0.5, hi + 0.5)
        ax.set_ylim(0, len(layers))
        ax.set_xlabel("time step" + ("" if (lo, hi) == (0, steps) else f" (steps {lo + 1}..{hi} of {steps})"))
        ax.set_title(f"{title} — image {image}")
    axes[0][0].set_yticks([b + 0.5 for b in range(len(layers))])
    axes[0][0].set_yticklabels([f"{name} ({g.shape[-1]})" for name, g, _ in layers])
    if rtl is not None:
        axes[0][-1].text(0.99, 0.01, "no divergence" if n_bad == 0 else f"{n_bad} differing spikes (red x)",
                         transform=axes[0][-1].transAxes, ha="right", va="bottom", fontsize=8,
                         color="green" if n_bad == 0 else "red")
    return _png(fig)


def plot_layers(sets: list[EnergySet], macs: list[int] | None) -> str | None:
    layered = [s for s in sets if s.counts.layered]
    if not layered:
        return None
    plt = _plt()
    n_layers = max(s.counts.n_layers for s in layered)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained")
    width = 0.8 / (len(layered) + (1 if macs else 0))
    x = np.arange(n_layers)
    for i, s in enumerate(layered):
        spikes = [s.counts.layer(l, "spikes") / s.counts.images for l in range(s.counts.n_layers)]
        acs = [s.counts.layer(l, "acs") / s.counts.images for l in range(s.counts.n_layers)]
        ax1.bar(x[:len(spikes)] + i * width, spikes, width, color=_COLORS[i % len(_COLORS)], label=s.label)
        ax2.bar(x[:len(acs)] + i * width, acs, width, color=_COLORS[i % len(_COLORS)], label=f"SNN ACs, {s.label}")
    if macs and len(macs) == n_layers:
        ax2.bar(x + len(layered) * width, macs, width, color="0.7", hatch="//", label="ANN MACs")
    for ax, what in ((ax1, "spikes per image"), (ax2, "operations per image")):
        ax.set_xticks(x + width * (len(layered) - (0 if macs else 1)) / 2)
        ax.set_xticklabels([f"L{l + 1}" for l in range(n_layers)])
        ax.set_ylabel(what)
        ax.grid(alpha=0.3, axis="y")
    ax2.set_yscale("log")
    ax1.set_title("spikes emitted per layer")
    ax2.set_title("ACs per layer (SNN) vs MACs (ANN)")
    ax1.legend(fontsize=7)
    ax2.legend(fontsize=7)
    return _png(fig)


def plot_energy(figures: dict) -> str | None:
    entries = figures["sets"]
    if not entries:
        return None
    plt = _plt()
    chips = [c.chip for c in entries[0]["comparisons"]]
    n_bars = len(entries) + 1
    width = 0.8 / n_bars
    fig, ax = plt.subplots(figsize=(max(7, 1.6 * len(chips) + 3), 4.2), layout="constrained")
    x = np.arange(len(chips))
    values = []
    for i, entry in enumerate(entries):
        ys = []
        for j, comp in enumerate(entry["comparisons"]):
            if comp.snn is None:
                ys.append(np.nan)
                continue
            ys.append(float(comp.snn.per_image_pj) * 1e-12)
            if comp.snn.excluded:
                ax.text(x[j] + i * width, ys[-1], "≥", ha="center", va="bottom", fontsize=8)
        values += [y for y in ys if np.isfinite(y)]
        ax.bar(x + i * width, ys, width, color=_COLORS[i % len(_COLORS)], label=f"SNN, {entry['set'].label}")
        for j, y in enumerate(ys):
            if not np.isfinite(y):
                ax.text(x[j] + i * width, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90,
                        transform=ax.get_xaxis_transform())
    ann = [np.nan if c.ann is None else float(c.ann.per_image_pj) * 1e-12 for c in entries[0]["comparisons"]]
    values += [y for y in ann if np.isfinite(y)]
    ax.bar(x + len(entries) * width, ann, width, color="0.7", hatch="//", label="ANN (MACs + weight reads)")
    for j, y in enumerate(ann):
        if not np.isfinite(y):
            ax.text(x[j] + len(entries) * width, 0, "ANN n/a", ha="center", va="bottom", fontsize=7, rotation=90,
                    transform=ax.get_xaxis_transform())
    ax.set_xticks(x + width * (n_bars - 1) / 2)
    ax.set_xticklabels([c.name for c in chips])
    if values and min(values) > 0:
        ax.set_yscale("log")
    ax.set_ylabel("energy per image (J)")
    ax.set_title("energy per image by chip model (≥: terms excluded, a lower bound)")
    ax.grid(alpha=0.3, axis="y", which="major")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
    return _png(fig)


# --------------------------------------------------------------------------------------------- html
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1180px;color:#222;
line-height:1.4;padding:0 12px}
h1{font-size:1.5em;margin-bottom:0}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:3px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0;font-size:0.9em}td,th{border:1px solid #ddd;padding:3px 8px;
vertical-align:top}th{background:#f5f5f5;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.verdict{padding:10px 14px;border-radius:6px;font-weight:600;margin:14px 0}.ok{background:#e6f4ea;color:#137333}
.bad{background:#fce8e6;color:#a50e0e}.none{background:#f1f3f4;color:#444}.muted{color:#666;font-size:0.88em}
img{max-width:100%}code{background:#f5f5f5;padding:0 3px}
"""


def _e(x) -> str:
    return html.escape(str(x))


def _table(head: list[str], rows: list[list], numeric_from: int = 1) -> str:
    out = ["<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            cls = ' class="n"' if i >= numeric_from else ""
            cells.append(f"<td{cls}>{v if isinstance(v, _Raw) else _e(v)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "\n".join(out) + "</table>"


class _Raw(str):
    """Already-escaped HTML for a table cell."""


def _pct(x) -> str:
    return "—" if x is None else f"{100 * float(x):.2f} %"


def _num(x, fmt="{:,}") -> str:
    return "—" if x is None else fmt.format(x)


def _verdict(run: RunData) -> str:
    s = run.summary
    if run.comparison is not None:
        c = run.comparison
        if c.equivalent:
            return (f'<div class="verdict ok">EQUIVALENT — golden model and RTL agree on every spike'
                    f'{", membrane" if "membranes" in c.checked else ""}, counter and cycle count '
                    f'({c.n_images} images × {c.n_steps} steps × {c.n_layers} layers)</div>')
        return (f'<div class="verdict bad">MISMATCH — first difference: {_e(c.first_difference)} '
                f'({c.n_images} images × {c.n_steps} steps × {c.n_layers} layers)</div>')
    if s.get("equivalent") is True:
        return '<div class="verdict ok">EQUIVALENT (from summary.json; the traces were not re-compared)</div>'
    if s.get("equivalent") is False:
        return (f'<div class="verdict bad">MISMATCH — first difference: {_e(s.get("first_difference"))} '
                f'(from summary.json)</div>')
    return '<div class="verdict none">Not co-simulated: golden model only (no RTL trace in this run)</div>'


def _figures_table(run: RunData, figures: dict) -> str:
    s, o = run.summary, run.options
    rows = [
        ["network", " → ".join(str(n) for n in run.network.layer_sizes) if run.network is not None else "—"],
        ["neuron / reset / normalisation", f"{o.get('neuron', '?')} / {o.get('reset', '?')} / {o.get('norm', '?')}"],
        ["time steps T, lanes P", f"{s.get('steps', '?')}, {o.get('lanes', '?')}"],
        ["ANN accuracy (test part)", _pct(s.get("ann_accuracy"))],
        [f"SNN accuracy, golden ({s.get('test_images', '?')} images)", _pct(s.get("snn_accuracy"))],
        ["ANN MACs per image", _num(s.get("ann_macs_per_image"))],
    ]
    totals, n = s.get("golden_totals") or {}, s.get("test_images")
    if totals and n:
        rows.append(["SNN ACs per image (golden, test part)", f"{totals['acs'] / n:,.0f}"])
        rows.append(["SNN spikes per image (golden, test part)", f"{totals['spikes'] / n:,.1f}"])
    for entry in figures["sets"]:
        if entry["ac_per_mac"] is not None:
            rows.append([f"ACs / ANN MACs (Sengupta ratio), {entry['set'].label}", f"{float(entry['ac_per_mac']):.4f}"])
    rows += [
        ["engine cycles per image (cycle model)", _num(s.get("cycles_per_image"), "{:,.0f}")],
        ["(cycles − fixed) / (ACs / P)", _num(s.get("cycle_bound_ratio"), "{:.3f}")],
        ["spikes per neuron, by layer", ", ".join(f"{x:.2f}" for x in s.get("spikes_per_neuron") or []) or "—"],
    ]
    if s.get("rtl_images"):
        rows += [
            ["co-simulated images", _num(s.get("rtl_images"))],
            ["RTL accuracy on those images", _pct(s.get("rtl_accuracy"))],
            ["simulated cycles / s", _num(s.get("rtl_cycles_per_second"), "{:,.0f}")],
            ["images / s (RTL)", _num(s.get("rtl_images_per_second"), "{:.2f}")],
        ]
    phases = s.get("phase_seconds") or {}
    if phases:
        rows.append(["time per phase", ", ".join(f"{k} {float(v):.1f} s" for k, v in phases.items())])
    return _table(["figure", "value"], rows)


def _counters_table(run: RunData) -> str:
    g, r = run.summary.get("golden_totals_rtl_images") or {}, run.summary.get("rtl_totals") or {}
    if run.golden is not None:
        g = run.golden.totals()
    if run.rtl is not None:
        r = run.rtl.totals()
    if not g or not r:
        return ""
    rows = [[name, f"{g.get(name, 0):,}", f"{r.get(name, 0):,}", _Raw("✓" if g.get(name) == r.get(name) else
                                                                      '<b style="color:#a50e0e">✗</b>')]
            for name in COUNTER_NAMES]
    return _table(["counter (co-simulated images)", "golden", "RTL", "equal"], rows)


def _primary(figures: dict) -> dict | None:
    """The set whose counts the breakdown shows: the RTL counters when the RTL ran, else the first set."""
    entries = figures["sets"]
    for entry in entries:
        if entry["set"].key == "cosim_rtl":
            return entry
    return entries[0] if entries else None


def _na(why: str, short: str) -> _Raw:
    return _Raw(f'<span class="muted" title="{_e(why)}">n/a ({_e(short)})</span>')


def _term_cell(comp: E.ChipComparison, term: str) -> str:
    price = comp.chip.prices[term]
    used = any(t == term for t, _ in comp.snn.included + comp.snn.excluded)
    if price.status == "included" and used:
        return f"inside {price.included_in}"
    if price.status == "excluded" and used:
        return "excluded"
    return E.fmt_energy(comp.snn.term(term) / comp.snn.images)


def _energy_tables(figures: dict) -> str:
    entries = figures["sets"]
    if not entries:
        return ""
    parts = []
    head = ["chip model", "scope"] + [f"SNN: {e['set'].label}" for e in entries] + ["ANN (per image)", "notes"]
    rows = []
    for j, comp0 in enumerate(entries[0]["comparisons"]):
        chip = comp0.chip
        row = [chip.name, chip.scope]
        for entry in entries:
            comp = entry["comparisons"][j]
            if comp.snn is None:
                row.append(_na(comp.snn_unavailable, comp.snn_unavailable_short))
                continue
            cell = _e(E.fmt_energy(comp.snn.per_image_pj))
            if comp.ann_over_snn is not None:
                cell += f'<br><span class="muted">ANN ÷ SNN {float(comp.ann_over_snn):.3g}</span>'
            row.append(_Raw(cell))
        row.append(E.fmt_energy(comp0.ann.per_image_pj) if comp0.ann is not None
                   else _na(comp0.ann_unavailable, comp0.ann_unavailable_short))
        snn = next((e["comparisons"][j].snn for e in entries if e["comparisons"][j].snn is not None), None)
        notes = [] if snn is None else (
            [f"excluded: {t}" for t, _ in snn.excluded] + [f"{t} inside {i}" for t, i in snn.included])
        row.append(_Raw(f'<span class="muted">{_e("; ".join(notes))}</span>'))
        rows.append(row)
    parts.append("<p>Energy per image (dynamic + static where the model has static power):</p>")
    parts.append(_table(head, rows, numeric_from=2))
    primary = _primary(figures)
    rows = []
    for comp in primary["comparisons"]:
        if comp.snn is None:
            continue
        static = comp.snn.static_pj
        rows.append([comp.chip.name] + [_term_cell(comp, t) for t in E.TERMS]
                    + ["excluded" if static is None and any(t == "static" for t, _ in comp.snn.excluded)
                       else ("inside " + comp.chip.all_in_term if static is None else
                             E.fmt_energy(static / comp.snn.images))])
    if rows:
        parts.append(f"<p>SNN energy per image by term — {_e(primary['set'].label)} "
                     f"<span class='muted'>(0 pJ for a term inside another term's figure)</span>:</p>")
        parts.append(_table(["chip model"] + list(E.TERMS) + ["static"], rows))
    rows = []
    for entry in entries:
        by_layer = entry["ac_per_mac_by_layer"]
        rows.append([entry["set"].label, "—" if entry["ac_per_mac"] is None else f"{float(entry['ac_per_mac']):.4f}",
                     "—" if not by_layer else ", ".join(
                         f"L{i + 1}: {'—' if r is None else f'{float(r):.3f}'}" for i, r in enumerate(by_layer))])
    parts.append("<p>Spiking ACs per ANN MAC (Sengupta et al. 2019's ratio; the paper reports 1.975 for VGG-16 and "
                 "2.4 for ResNet-34 on ImageNet):</p>")
    parts.append(_table(["counts", "ACs / MACs", "by layer"], rows))
    return "\n".join(parts)


def _chip_table(chips: list[E.ChipModel]) -> str:
    parts = []
    for chip in chips:
        rows = [[t, chip.prices[t].describe(),
                 chip.prices[t].read_in or "—", chip.prices[t].note or "—"] for t in E.TERMS + E.SETTINGS]
        refs = "<br>".join(f"[{_e(k)}] {_e(v)}" for k, v in chip.references.items())
        parts.append(f"<h3>{_e(chip.name)} — {_e(chip.title)} <span class='muted'>(scope: {_e(chip.scope)}; "
                     f"{_e(chip.label)})</span></h3><p class='muted'>{_e(chip.summary)}</p>")
        parts.append(_table(["term", "figure and source", "where we read it", "note"], rows, numeric_from=99))
        parts.append(f"<p class='muted'>{refs}</p>")
    return "\n".join(parts)


def _fpga_section(run_dir: Path) -> list[str]:
    """The FPGA figures of ``snncosim fpga RUN_DIR`` (fpga.json), when it ran."""
    path = Path(run_dir) / "fpga.json"
    if not path.is_file():
        return []
    from .fpga_command import figure_rows

    try:
        figures = json.loads(path.read_text())
        rows = [list(row) for row in figure_rows(figures)]
    except (ValueError, KeyError, TypeError) as exc:
        return ["<h2>FPGA</h2>", f'<p class="muted">fpga.json could not be read: {_e(exc)}</p>']
    where = f"{figures['device']} {figures['package']}".strip()
    flow = ("synthesised with Yosys, placed and routed with nextpnr" if figures.get("placed_and_routed")
            else "synthesis only (Yosys cell counts before packing; no open place-and-route flow)")
    return ["<h2>FPGA</h2>",
            f"<p class='muted'>{_e(where)} ({_e(figures['target'])}), P = {_e(figures['lanes'])} lanes; {flow}. "
            f"Logs and reports: <code>{_e(figures.get('folder', ''))}</code>.</p>",
            _table(["figure", "value", "device share / note"], rows)]


def _img(uri: str | None, alt: str, missing: str) -> str:
    if uri is None:
        return f'<p class="muted">{_e(missing)}</p>'
    return f'<img alt="{_e(alt)}" src="{uri}">'


def write_report(run_dir: str | Path, chips: list | None = None, output: str | Path | None = None, *,
                 in_progress: bool = False, shown_as: str | Path | None = None) -> Path:
    """Write ``report.html`` (and ``energy.json``) for a run directory; returns the HTML path.

    ``chips``: chip-model names or YAML paths (default: every shipped model); ``in_progress``: see
    :func:`load_run`; ``shown_as``: the directory the report names (the run's final path while the job writes
    it in a staging directory)."""
    t0 = time.perf_counter()
    run = load_run(run_dir, in_progress=in_progress)
    models = E.load_chips(chips)
    figures = run_energy(run, models)
    sets = [e["set"] for e in figures["sets"]]
    macs = run.ann_macs_per_layer()

    curves_png = plot_curves(run.curves, None if macs is None else sum(macs)) if run.curves else None
    raster_png = None
    raster_note = "no golden trace in this run (co-simulation was off)"
    if run.golden is not None:
        image, first_step = 0, None
        if run.comparison is not None and run.comparison.first_difference is not None:
            image = run.comparison.first_difference.image
            first_step = run.comparison.first_difference.step
        raster_png = plot_raster(run.golden, run.rtl if run.comparison is not None else None, image, first_step)
    layers_png = plot_layers(sets, macs if run.network is not None else None)
    energy_png = plot_energy(figures)

    shown = Path(shown_as) if shown_as is not None else run.path
    title = f"snncosim report — {shown.name}"
    body = [f"<h1>{_e(title)}</h1>",
            f"<p class='muted'>run directory <code>{_e(shown)}</code>; written "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}</p>",
            _verdict(run), "<h2>Figures of the run</h2>", _figures_table(run, figures), _counters_table(run),
            "<h2>Accuracy vs time step</h2>",
            _img(curves_png, "accuracy vs time step",
                 "this run has no curves.json (accuracy per time step per coding is written by the main job)"),
            "<h2>Spike raster, golden vs RTL</h2>", _img(raster_png, "spike raster", raster_note),
            "<p class='muted'>Layers stacked as bands of equal height (neuron index scaled within each band); red × "
            "marks a neuron and step where golden and RTL differ; the dashed line is the step of the first "
            "difference.</p>",
            "<h2>Spikes and synaptic operations per layer</h2>",
            _img(layers_png, "per-layer spikes and ACs", "no per-layer counts in this run"),
            "<h2>Energy per chip model</h2>",
            _img(energy_png, "energy per chip model", "no operation counts to price"),
            "<p class='muted'>SNN energy = Σ count × energy per operation from the chip model (+ static power × "
            "cycles / clock where the model has both); ANN = the same network's MACs plus one weight read per MAC "
            "(packed into memory words) on the same chip. A chip with no figure for a needed term shows n/a "
            "(never zero); excluded terms make the figure a lower bound. Exact values: energy.json.</p>",
            _energy_tables(figures),
            *_fpga_section(run.path),
            "<h2>Chip models and their sources</h2>",
            "<p class='muted'>“unverified” = read in a secondary source (see “where we read it”), not yet "
            "checked against the primary paper.</p>",
            _chip_table(models)]
    if run.notes:
        body.append("<h2>Notes on this run directory</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in run.notes)
                    + "</ul>")
    body.append(f"<p class='muted'>generated by snncosim in {time.perf_counter() - t0:.1f} s</p>")
    doc = (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
           f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    out = Path(output) if output is not None else run.path / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, doc)
    write_text_atomic(out.parent / "energy.json", json.dumps(_energy_json(run, figures, models), indent=1))
    return out
