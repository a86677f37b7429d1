"""FPGA figures of the default MNIST MLP (rate, weighted, FS) and Diehl's ConvNet at several lane counts, beside
Spiker+ and Fan & Levy (issue 15; docs/benchmarks.md, "FPGA").

    python scripts/bench_fpga.py                          # every point, ECP5 LFE5U-85F (tens of minutes)
    python scripts/bench_fpga.py --points mlp-rate-P8     # one point
    python scripts/bench_fpga.py --target xc7             # Artix-7 XC7A100T, synthesis only

Each point converts the network (the cached trained models: the MLP of ``snncosim run``, Diehl's ConvNet of
scripts/bench_convnet.py) with ``snncosim convert``, then runs ``snncosim fpga NET --target T -P P`` (Yosys, nextpnr)
one at a time, and prints a Markdown table: LUTs, FFs, block RAMs, DSPs, fmax, cycles per image (golden cycle model
on 100 test images, exact to the RTL), time per image and images/s at fmax, then the published reference rows.
Figures are from the tools' reports; nothing is hard-coded but the two published references.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# label -> (network, coding, lanes)
POINTS = {
    "mlp-rate-P8": ("mlp", "rate", 8),
    "mlp-weighted-P8": ("mlp", "weighted", 8),
    "mlp-fs-P8": ("mlp", "fs", 8),
    "convnet-rate-P8": ("convnet", "rate", 8),
    "convnet-rate-P16": ("convnet", "rate", 16),
    "mlp-rate-P16": ("mlp", "rate", 16),
    "mlp-weighted-P16": ("mlp", "weighted", 16),
    "mlp-fs-P16": ("mlp", "fs", 16),
}

# published figures, as the papers give them (issue 15); what differs is said in docs/benchmarks.md
REFERENCES = [
    ("Spiker+ (MNIST MLP, Carpegna et al. 2024)", "7,612 logic cells", "—", "18 BRAM", "—", "—", "—", "780 us"),
    ("Fan & Levy (Artix-7, MNIST)", "6,358 LUTs", "—", "—", "—", "100 MHz", "—", "520 us"),
]


def diehl_convnet():
    """``--model scripts/bench_fpga.py:diehl_convnet`` for snncosim convert: the cached trained ConvNet."""
    from golden.training.ann_trainer import DEFAULT_CONV_RECIPE, default_convnet

    return default_convnet(recipe=DEFAULT_CONV_RECIPE)


def _snncosim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cosim.app", *args], cwd=ROOT, capture_output=True, text=True)


def network(kind: str, coding: str, folder: Path) -> Path:
    path = folder / f"{kind}-{coding}.snn"
    if not path.is_dir():
        model = [] if kind == "mlp" else ["--model", f"{Path(__file__).resolve()}:diehl_convnet"]
        done = _snncosim("convert", "-o", str(path), "--coding", coding, "--quiet", *model)
        if done.returncode != 0:
            raise SystemExit(f"convert {kind} {coding} failed:\n{done.stderr[-2000:]}")
    return path


def run_point(label: str, target: str, folder: Path) -> dict:
    kind, coding, lanes = POINTS[label]
    net = network(kind, coding, folder)
    out, figures = folder / f"flow-{target}-{label}", folder / f"{target}-{label}.json"
    start = time.monotonic()
    done = _snncosim("fpga", str(net), "--target", target, "-P", str(lanes), "--out", str(out), "--json",
                     str(figures), "--quiet", "--force")
    if done.returncode != 0:
        return {"label": label, "error": (done.stderr.strip().splitlines() or ["?"])[-1],
                "seconds": time.monotonic() - start}
    result = json.loads(figures.read_text())
    result["label"], result["seconds_total"] = label, time.monotonic() - start
    return result


def row(result: dict) -> list[str]:
    if "error" in result:
        return [result["label"], result["error"], "", "", "", "", "", ""]
    r, timing, per = result["resources"], result.get("timing"), result.get("per_image")
    share = lambda k: f" ({100 * r[k]['used'] / r[k]['available']:.0f} %)" if r[k]["available"] else ""  # noqa: E731
    return [result["label"], f"{r['luts']['used']:,}{share('luts')}", f"{r['ffs']['used']:,}{share('ffs')}",
            f"{r['brams']['used']:g}{share('brams')}", f"{r['dsps']['used']}",
            f"{timing['fmax_mhz']:.1f} MHz" if timing else "— (synthesis only)",
            f"{timing['critical_path_ns']:.1f} ns, {timing['logic_levels']} levels: "
            f"{' -> '.join(dict.fromkeys(n.split('$')[0].split('.0.')[0] for n in timing['through']))}"
            if timing else "—",
            f"{per['microseconds']:,.0f} us ({per['images_per_second']:,.0f}/s), "
            f"{result['cycles']['cycles_per_image']:,.0f} cycles" if per else
            f"{result['cycles']['cycles_per_image']:,.0f} cycles"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="ecp5", choices=["ecp5", "ice40", "xc7"])
    parser.add_argument("--points", nargs="*", default=list(POINTS), choices=list(POINTS))
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench_fpga"))
    args = parser.parse_args()
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    results = []
    for label in args.points:  # one at a time: two synthesis jobs at once lost one on a 2-core machine
        print(f"{label} ...", file=sys.stderr, flush=True)
        results.append(run_point(label, args.target, folder))
        print(f"  {row(results[-1])}  ({results[-1].get('seconds_total', results[-1].get('seconds', 0)):.0f} s)",
              file=sys.stderr, flush=True)
    device = next((r for r in results if "device" in r), None)
    print(f"\nDevice: {device['device']} {device['package']} ({args.target})" if device else "")
    head = ["point", "LUTs", "FFs", "block RAM", "DSP", "fmax", "critical path", "time per image"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for result in results:
        print("| " + " | ".join(row(result)) + " |")
    for ref in REFERENCES:
        print("| " + " | ".join(ref) + " |")
    (folder / f"{args.target}-summary.json").write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
