"""Human-readable output of a run: the table ``snncosim run`` prints."""

from __future__ import annotations

from .job import JobResult


def _row(name: str, golden, rtl="") -> str:
    return f"  {name:<34}{str(golden):>18}{str(rtl):>18}"


def format_run_table(result: JobResult) -> str:
    o = result.options
    lines = [
        "",
        f"snncosim {'cosim' if o.get('network') else 'run'} — {result.title}, {result.coding_description}"
        + ("" if o.get("network") else f", {o['norm']} normalisation") + f", T={result.steps}, P={o['lanes']}",
        *([f"  data: {result.data}"] if o.get("network") else []),
        "",
        f"  {'accuracy':<34}{'ANN':>18}{'SNN (golden)':>18}",
        _row(f"test part ({result.test_images} images)",
             "n/a" if result.ann_accuracy is None else f"{100 * result.ann_accuracy:.2f} %",
             f"{100 * result.snn_accuracy:.2f} %"),
        _row("SNN - ANN", "", "n/a (no ANN accuracy recorded for this data)" if result.ann_accuracy is None
             else f"{100 * (result.snn_accuracy - result.ann_accuracy):+.2f} pp"),
        "",
        f"  {'per image (test part, golden)':<34}{'value':>18}",
        _row("ANN MACs", f"{result.ann_macs_per_image:,}"),
        _row("SNN ACs", f"{result.golden_totals['acs'] / result.test_images:,.0f}"),
        _row("RTL cycles (cycle model)", f"{result.cycles_per_image:,.0f}"),
    ]
    if result.cycle_bound_ratio is not None:
        lines.append(_row("(cycles - fixed) / (ACs / P)", f"{result.cycle_bound_ratio:.3f}"))
    lines.append(_row("spikes per neuron, by layer", ", ".join(f"{s:.2f}" for s in result.spikes_per_neuron)))
    if result.equivalent is not None:
        g, r = result.golden_totals_rtl_images, result.rtl_totals
        lines += [
            "",
            f"  {f'co-simulation ({result.rtl_images} images)':<34}{'golden':>18}{'RTL':>18}",
            _row("cycles", f"{g['cycles']:,}", f"{r['cycles']:,}"),
            _row("ACs", f"{g['acs']:,}", f"{r['acs']:,}"),
            _row("spikes", f"{g['spikes']:,}", f"{r['spikes']:,}"),
            _row("neuron updates", f"{g['neuron_updates']:,}", f"{r['neuron_updates']:,}"),
            _row("weight words read", f"{g['weight_reads']:,}", f"{r['weight_reads']:,}"),
            _row("saturations", f"{g['saturations']:,}", f"{r['saturations']:,}"),
            _row("accuracy on these images", "", f"{100 * result.rtl_accuracy:.1f} %"),
            _row("simulated cycles / s", "", f"{result.rtl_cycles_per_second:,.0f}"),
            _row("images / s", "", f"{result.rtl_images_per_second:.2f}"),
            *([_row("simulator processes, check", "", f"{result.rtl_jobs}, {result.rtl_check}")]
              if result.rtl_jobs else []),
            *([_row("peak memory (snncosim, simulator)", "",
                    f"{result.peak_rss_mb:,.0f} MB, {result.simulator_peak_rss_mb:,.0f} MB")]
              if result.peak_rss_mb is not None else []),
            "",
            "  verdict: " + ("EQUIVALENT — every spike, membrane, counter and cycle count matches"
                             if result.equivalent else f"MISMATCH — first difference: {result.first_difference}"),
        ]
    if result.energy_lines:
        lines += ["", f"  energy per image ({result.energy_source}):"] + result.energy_lines
    if result.report:
        lines += ["", f"  report: {result.report}"]
    if result.waves_file:
        lines += [f"  waveform: {result.waves_file}"]
    lines += ["", "  time per phase: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.phase_seconds.items()),
              f"  run directory: {result.out_dir}", ""]
    return "\n".join(lines)


def print_run_table(result: JobResult) -> None:
    print(format_run_table(result))
