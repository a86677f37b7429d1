"""``report.html`` of ``snncosim sweep``: the counts and the verdicts, one figure per swept parameter (golden
accuracy, cycles per image and SNN energy per image against it; PNGs embedded, so the file stands alone) and the
table, failed points with their errors and tracebacks."""

from __future__ import annotations

import base64
import html
import io
import math

from golden.core.files import write_text_atomic

from .sweep_results import counts, merged_points

__all__ = ["write_report", "plot_parameter"]

MAX_LINES = 8  # more combinations of the other parameters than this: their mean and range are drawn
_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
_CSS = """body{font-family:system-ui,sans-serif;margin:24px;max-width:1200px;color:#222}
table{border-collapse:collapse;font-size:0.85em;margin:10px 0}td,th{border:1px solid #ddd;padding:3px 7px}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}tr.failed{background:#fce8e6}
tr.mismatch{background:#fde2c8}.verdict{padding:10px 14px;border-radius:6px;font-weight:600;margin:14px 0}
.ok{background:#e6f4ea;color:#137333}.bad{background:#fce8e6;color:#a50e0e}img{max-width:100%}
pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:0.8em}.muted{color:#666;font-size:0.88em}"""


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    plt = _plt()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _value(point: dict, key: str):
    return point.get(key) if key in point else (point.get("params") or {}).get(key)


def _axis(points: list[dict], key: str) -> tuple[list, bool]:
    """The values of ``key`` in plotting order, and whether they are numbers (else categories)."""
    values = []
    for point in points:
        value = _value(point, key)
        if value not in values:
            values.append(value)
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    return (sorted(values) if numeric else values), numeric


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def plot_parameter(points: list[dict], key: str, others: list[str], chips: list[str]) -> str | None:
    """Golden accuracy, cycles per image and energy per image (per chip, averaged over the other parameters)
    against ``key``; accuracy and cycles drawn per combination of the ``others`` (their mean and range beyond
    :data:`MAX_LINES` combinations). None when no point of the sweep has figures."""
    ran = [p for p in points if _finite(p.get("golden_accuracy"))]
    if not ran:
        return None
    xs, numeric = _axis(ran, key)
    position = {v: (v if numeric else i) for i, v in enumerate(xs)}
    groups: dict[tuple, list[dict]] = {}
    for point in ran:
        groups.setdefault(tuple(_value(point, k) for k in others), []).append(point)
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), layout="constrained")
    metrics = (("golden_accuracy", "golden accuracy (%)", 100.0), ("cycles_per_image", "cycles per image", 1.0))
    for ax, (name, label, factor) in zip(axes[:2], metrics):
        if len(groups) <= MAX_LINES:
            for i, (combo, members) in enumerate(groups.items()):
                pairs = sorted((position[_value(m, key)], factor * m[name]) for m in members if _finite(m.get(name)))
                if pairs:
                    ax.plot(*zip(*pairs), marker="o", ms=4, color=_COLORS[i % len(_COLORS)],
                            label=", ".join(f"{k}={v}" for k, v in zip(others, combo)) or None)
        else:
            _mean_and_range(ax, ran, key, position, name, factor, "#1f77b4", f"mean of {len(groups)} combinations")
        ax.set_ylabel(label)
    for i, chip in enumerate(chips):
        values = [dict(p, _e=(p.get("energy_pj_per_image") or {}).get(chip)) for p in ran]
        _mean_and_range(axes[2], values, key, position, "_e", 1.0, _COLORS[i % len(_COLORS)], chip)
    axes[2].set_ylabel("SNN energy per image (pJ)")
    if axes[2].lines:
        axes[2].set_yscale("log")
    for ax, title in zip(axes, ("accuracy", "cycles", "energy (mean over the other parameters)")):
        ax.set_xlabel(key)
        ax.set_title(f"{title} vs {key}", fontsize=10)
        ax.grid(alpha=0.3)
        if not numeric:
            ax.set_xticks(range(len(xs)), [str(v) for v in xs], rotation=20, fontsize=8)
        elif len(xs) <= 12:
            ax.set_xticks(xs, [f"{v:g}" for v in xs])
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return _png(fig)


def _mean_and_range(ax, points, key, position, name, factor, color, label) -> None:
    by_x: dict = {}
    for point in points:
        if _finite(point.get(name)):
            by_x.setdefault(position[_value(point, key)], []).append(factor * point[name])
    if not by_x:
        return
    xs = sorted(by_x)
    means = [sum(by_x[x]) / len(by_x[x]) for x in xs]
    low = [m - min(by_x[x]) for m, x in zip(means, xs)]
    high = [max(by_x[x]) - m for m, x in zip(means, xs)]
    ax.errorbar(xs, means, yerr=[low, high], marker="o", ms=4, capsize=3, color=color, label=label)


def _e(x) -> str:
    return html.escape("" if x is None else str(x))


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3e}"
    return _e(value)


def _table(points: list[dict], names: list[str]) -> str:
    head = "<tr>" + "".join(f"<th>{_e(n)}</th>" for n in names) + "</tr>"
    body = []
    for point in points:
        status = point.get("status", "")
        cells = "".join(f'<td class="n">{_cell(_value(point, n))}</td>' if isinstance(_value(point, n), (int, float))
                        else f"<td>{_cell(_value(point, n))}</td>" for n in names)
        body.append(f'<tr class="{_e(status)}">{cells}</tr>')
    return f"<table>{head}{''.join(body)}</table>"


def _failures(rows: list[dict]) -> str:
    bad = [r for r in rows if r.get("status") != "ok"]
    if not bad:
        return ""
    parts = ["<h2>Points that failed or disagreed</h2>"]
    for row in bad:
        where = ", ".join(f"{k}={v}" for k, v in (row.get("params") or {}).items()) or "(defaults)"
        shard = f", shard {row['shard']}" if row.get("shard") else ""
        text = row.get("error") or row.get("first_difference") or "(no message)"
        parts.append(f"<p><b>point {row['point']}{shard}</b> ({_e(where)}): {_e(row.get('status'))}: {_e(text)}</p>")
        if row.get("traceback"):
            parts.append(f"<details><summary>traceback (worker {_e(row.get('worker'))})</summary>"
                         f"<pre>{_e(row['traceback'])}</pre></details>")
    return "\n".join(parts)


def write_report(folder, rows: list[dict], swept: tuple[str, ...], chips: list[str], meta: dict):
    """Write ``folder/report.html``; returns its path."""
    points = merged_points(rows)
    found = counts(rows)
    verdict_class = "ok" if not found["mismatch"] and not found["failed"] else "bad"
    summary = (f"{len(points)} points ({len(rows)} tasks): {found['ok']} ok, {found['mismatch']} mismatch, "
               f"{found['failed']} failed")
    figures = []
    for key in swept:
        others = [k for k in swept if k != key]
        uri = plot_parameter(points, key, others, chips)
        if uri:
            figures.append(f'<h3>against {_e(key)}</h3><img src="{uri}" alt="figures against {_e(key)}">')
    if not figures:
        figures.append('<p class="muted">no plots: nothing is swept, or no point finished</p>')
    names = ["point", "network", "coding", "T", "K", "P", "weight_bits", "membrane_bits", "seed",
             *[k for k in swept if k not in ("network", "coding", "T", "K", "P", "weight_bits", "membrane_bits",
                                             "seed")],
             "status", "verdict", "ann_accuracy", "golden_accuracy", "test_images", "rtl_images", "cycles_per_image",
             "acs_per_image", "spikes_per_image", "error"]
    settings = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in meta.items()
                       if not isinstance(v, (dict, list)))
    text = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>snncosim sweep</title>
<style>{_CSS}</style></head><body><h1>snncosim sweep</h1>
<div class="verdict {verdict_class}">{_e(summary)}</div>
<table>{settings}</table>
<h2>Figures against the swept parameters</h2>
<p class="muted">golden accuracy and cycles on the test images of each point; RTL verdicts on the first RTL images;
energy: the SNN's per image on each chip model, from the golden counters</p>
{''.join(figures)}
<h2>Points</h2>{_table(points, names)}
{_failures(rows)}
</body></html>
"""
    return write_text_atomic(folder / "report.html", text)
