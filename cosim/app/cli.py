"""``snncosim``: the command line.

Subcommands: ``run`` (the main job on the embedded MNIST default), ``convert`` (save the default network as an
integer-network file), ``train`` (train a spiking network directly, Lee 2016, and save it), ``verilog`` (synthesizable Verilog + memory-initialisation files), ``compare`` (re-compare
two saved traces), ``report`` (HTML report of a run directory), ``chips`` (the chip energy models). User mistakes print one ``snncosim: error: …`` line and exit with status 2; an equivalence
failure exits with status 1.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from golden.core.errors import SnnCosimError
from golden.core.files import check_output_path, check_writable_file, incomplete_output_of, write_text_atomic
from golden.core.network import IntegerNetwork
from golden.core.trace import Trace, compare
from golden.data import DEFAULT_TRAIN_SIZE, TEST_PART_SIZE
from golden.training.lee_config import LeeConfig

from .fpga_command import add_fpga_parser
from .nir_commands import add_export_nir_parser, add_nir_convert_options, convert_nir
from .options import FULL_TRACE_AUTO_IMAGES, JobOptions
from .sweep_command import add_sweep_parser
from .user_model import load_user_model

# torch, Amaranth and the conversion/simulation code are imported inside the commands that need them, so that the
# CLI starts (and refuses a bad option) in about a second

INTERRUPT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the main thread is so that every ``finally`` runs: the simulator's process
    group is ended (cosim.runner.run_process_group) and staged outputs are removed (golden.core.files)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _add_conversion_options(parser: argparse.ArgumentParser, norms=("data", "model", "percentile")) -> None:
    defaults = JobOptions()  # the one place of the defaults (the Python API's too: golden.conversion.DEFAULT_NEURON)
    parser.add_argument("--neuron", choices=("if", "lif"), default=defaults.neuron,
                        help=f"neuron model (default: {defaults.neuron})")
    parser.add_argument("--reset", choices=("zero", "subtract"), default=defaults.reset,
                        help=f"reset after a spike (default: {defaults.reset}, as the Python API)")
    parser.add_argument("--leak-shift", type=int, default=defaults.leak_shift,
                        help=f"LIF leak v >>> k (default: {defaults.leak_shift})")
    parser.add_argument("--norm", choices=norms, default=defaults.norm,
                        help="normalisation: Diehl 2015 model/data-based, Rueckauer percentile"
                             + (", Sengupta 2019 Spike-Norm" if "spikenorm" in norms else "") + " (default: data)")
    parser.add_argument("--percentile", type=float, default=99.9, help="for --norm percentile (default: 99.9)")
    parser.add_argument("--weight-bits", type=int, default=8)
    parser.add_argument("--membrane-bits", type=int, default=24)
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="where the trained default network is cached (default: ~/.cache/snncosim)")


def _add_data_options(parser: argparse.ArgumentParser, used_for: str) -> None:
    parser.add_argument("--data", default=None, metavar="DATA",
                        help=f"data set for {used_for}: 'mnist' (the embedded set, default), a directory of IDX "
                             f"files (any image size) or CIFAR-10 python batches, or an .npz with x_train, y_train, "
                             f"x_test, y_test (docs/data.md)")
    parser.add_argument("--input-scale", type=_fraction, default=None, metavar="S",
                        help="float value of code 1 of uint8 images (default: 1/255, torchvision's convention)")
    parser.add_argument("--value-range", type=float, default=None, metavar="R",
                        help="float images in [0, R]: quantised to 8-bit codes round(x/R*255)")


def _add_cosim_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                        help="simulator processes at a time, each on its own share of the RTL images (default: the "
                             "cores available)")
    check = parser.add_mutually_exclusive_group()
    check.add_argument("--full-trace", dest="full_trace", action="store_const", const=True, default=None,
                       help="write and compare every spike, membrane and counter of every RTL image as a trace "
                            f"(default up to {FULL_TRACE_AUTO_IMAGES} RTL images: the run directory keeps both traces)")
    check.add_argument("--digest", dest="full_trace", action="store_const", const=False,
                       help="check each RTL image (FS: each stream of images) by a digest of every spike, membrane, "
                            "counter and cycle count; only those whose digests differ are re-run as full traces "
                            "(default above "
                            f"{FULL_TRACE_AUTO_IMAGES} RTL images)")


def _fraction(text: str) -> float:
    """A positive number, also written as a fraction (1/255)."""
    from fractions import Fraction

    try:
        value = float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not a number or fraction: {text!r}") from None
    return value


def _add_force_option(parser: argparse.ArgumentParser, option: str) -> None:
    parser.add_argument("--force", action="store_true",
                        help=f"let {option} replace an earlier snncosim output of another kind (an earlier output of "
                             f"the same kind is always replaced; other files and directories never are)")


def _cmd_run(args: argparse.Namespace) -> int:

    options = JobOptions(
        coding=args.coding, phases=args.phases, skip_periods=args.skip_periods, steps=args.steps, rtl_images=args.rtl_images, test_images=args.test_images, lanes=args.lanes,
        neuron=args.neuron, reset=args.reset, leak_shift=args.leak_shift, norm=args.norm,
        percentile=args.percentile, max_rate=args.max_rate, weight_bits=args.weight_bits,
        membrane_bits=args.membrane_bits, seed=args.seed, out_dir=args.out, cache_dir=args.cache_dir,
        rtl=not args.no_rtl, waves=args.waves, report=not args.no_report, other_codings=args.other_codings,
        progress=not args.quiet, force=args.force, jobs=args.jobs, full_trace=args.full_trace)
    return _run_and_report(options, args)


def _cmd_cosim(args: argparse.Namespace) -> int:
    options = JobOptions(
        network=args.network, data=args.data, input_scale=args.input_scale, value_range=args.value_range,
        steps=args.steps, rtl_images=args.rtl_images, test_images=args.test_images, lanes=args.lanes, seed=args.seed,
        out_dir=args.out, rtl=not args.no_rtl, waves=args.waves, report=not args.no_report, other_codings=0,
        progress=not args.quiet, force=args.force, jobs=args.jobs, full_trace=args.full_trace)
    if not (args.network / "network.yaml").is_file():
        raise SnnCosimError(f"{args.network}: not an integer-network directory (expected network.yaml inside; "
                            f"make one with snncosim convert)")
    return _run_and_report(options, args)


def _run_and_report(options: JobOptions, args: argparse.Namespace) -> int:
    """``run`` and ``cosim``: check the options and the outputs, run the job, print the table, write --json;
    exit status 1 on a mismatch."""
    options.validate()  # before the heavy imports: a bad option is refused at once
    check_output_path(args.out, "run", force=args.force, option="--out")
    if args.json:
        check_writable_file(args.json, "--json")
    from .job import run_job
    from .report_text import print_run_table

    result = run_job(options)
    print_run_table(result)
    if args.json:
        write_text_atomic(args.json, result.to_json())
    return 1 if result.equivalent is False else 0


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0]}" if text else exc.__class__.__name__


_TORCH_ONLY_CONVERT_OPTIONS = {  # option -> the value that means "not given"
    "model": None, "weights": None, "data": None, "calibration": None, "input_scale": None, "value_range": None,
    "coding": "rate", "phases": None, "skip_periods": 0, "norm": JobOptions.norm, "percentile": 99.9,
    "neuron": JobOptions.neuron, "reset": JobOptions.reset, "leak_shift": JobOptions.leak_shift,
    "spikenorm_steps": 100, "spikenorm_images": 256, "cache_dir": None}


def _refuse_torch_options_for_nir(args: argparse.Namespace) -> None:
    """A NIR graph carries its own neurons and weights: the torch-conversion options would be silently ignored."""
    given = [name for name, unset in _TORCH_ONLY_CONVERT_OPTIONS.items() if getattr(args, name) != unset]
    if given:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        raise SnnCosimError(f"{options} appl{'ies' if len(given) == 1 else 'y'} to torch models, not to a NIR graph "
                            f"(a graph carries its neurons and weights; its options are --weight-bits, "
                            f"--membrane-bits, --dt, --scale)")


def _cmd_convert(args: argparse.Namespace) -> int:
    if args.source is not None:  # snncosim convert GRAPH.nir
        _refuse_torch_options_for_nir(args)
        return convert_nir(args)
    if args.calibration is not None:
        if args.data is not None:
            raise SnnCosimError("--calibration is the older name of --data; give one of them")
        args.data = str(args.calibration)
    options = JobOptions(coding=args.coding, phases=args.phases, skip_periods=args.skip_periods, neuron=args.neuron,
                         reset=args.reset, leak_shift=args.leak_shift, norm="data", percentile=args.percentile,
                         weight_bits=args.weight_bits, membrane_bits=args.membrane_bits, rtl=False, data=args.data,
                         input_scale=args.input_scale, value_range=args.value_range)
    options.validate()
    if args.coding != "rate" and (args.neuron != "if" or args.reset != JobOptions.reset):
        raise SnnCosimError(f"--coding {args.coding} fixes its neurons; --neuron/--reset apply to rate coding")
    for name in ("spikenorm_steps", "spikenorm_images"):
        if getattr(args, name) < 1:
            raise SnnCosimError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    check_output_path(args.output, "network", force=args.force, option="-o")
    from golden.data.dataset import load_dataset

    dataset = load_dataset(args.data, scale=args.input_scale, value_range=args.value_range)
    import torch

    from golden.conversion.pipeline import Recipe
    from golden.training import ann_trainer as golden_train

    if args.model is not None:
        model = load_user_model(args.model, args.weights)
    else:
        model = golden_train.default_mlp(args.cache_dir, progress=not args.quiet)
    recipe = Recipe(coding=args.coding, norm=args.norm,
                    neuron=options.neuron_params() if args.coding == "rate" else JobOptions().neuron_params(),
                    percentile=args.percentile, weight_bits=args.weight_bits, membrane_bits=args.membrane_bits,
                    phases=options.phases if args.coding != "rate" else None, skip_periods=args.skip_periods,
                    spikenorm_steps=args.spikenorm_steps, spikenorm_images=args.spikenorm_images,
                    input_scale=dataset.scale)
    calibration = torch.from_numpy(dataset.calibration_images())
    network = _convert_user_model(model, calibration, recipe, dataset)
    test_images, test_labels = dataset.test_part()
    ann_inputs = torch.from_numpy(test_images).to(torch.float32).mul(dataset.scale)
    if len(network.input_shape) == 3:
        ann_inputs = ann_inputs.reshape(len(test_images), *network.input_shape)
    accuracy = golden_train.evaluate(model, ann_inputs, test_labels)
    network.metadata.setdefault("ann", {})["accuracy"] = {"value": float(accuracy), "data": dataset.name,
                                                          "images": int(len(test_images))}
    path = network.save(args.output, force=args.force, option="-o")
    skips = f", {len(network.skips)} residual junctions" if network.skips else ""
    what = f"{args.neuron}/{args.reset}, {args.norm} normalisation" if args.coding == "rate" else \
        f"{args.coding} coding K={network.phases}" + (f", {args.norm} normalisation" if args.coding == "weighted" else "")
    print(f"wrote {path} ({' -> '.join(str(n) for n in network.layer_sizes)}{skips}, {what}; ANN "
          f"{100 * accuracy:.2f} % on the {len(test_images)} test images of {dataset.name})")
    return 0


def _convert_user_model(model, calibration, recipe, dataset):
    """The conversion, with the errors a model that does not fit the data makes turned into one line."""
    from golden.conversion.pipeline import convert_model

    try:
        network = convert_model(model, calibration, recipe).integer
    except RuntimeError as exc:  # torch: the model cannot take the data set's images
        raise SnnCosimError(f"the model cannot take the images of {dataset.name} (shape "
                            f"{dataset.image_shape}): {_one_line(exc)}") from None
    dataset.check_fits(network)
    return network


def _cmd_verilog(args: argparse.Namespace) -> int:

    if not 1 <= args.lanes <= 64:
        raise SnnCosimError(f"--lanes must be in 1..64, got {args.lanes}")
    check_output_path(args.output, "verilog", force=args.force, option="-o")
    network = IntegerNetwork.load(args.network)
    from hw.verilog import write_verilog

    written = write_verilog(network, args.output, lanes=args.lanes, force=args.force)
    for path in written if isinstance(written, (list, tuple)) else [written]:
        print(f"wrote {path}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:

    for path in (args.golden, args.rtl):
        marker = incomplete_output_of(path)
        if marker is not None:
            raise SnnCosimError(f"{path}: belongs to the incomplete {marker.get('kind', 'run')} {marker['path']} "
                                f"({'it failed: ' + marker['error'] if marker.get('error') else 'interrupted or still running'}); "
                                f"its traces are not compared")
    golden, rtl = Trace.load(args.golden), Trace.load(args.rtl)
    comparison = compare(golden, rtl)
    print(comparison.summary())
    return 0 if comparison.equivalent else 1


def _cmd_chips(args: argparse.Namespace) -> int:
    from golden.energy.estimate import load_chips

    for i, model in enumerate(load_chips(None if not args.models else args.models)):
        print(("\n" if i else "") + "\n".join(model.describe()))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report_html import write_report

    print(write_report(args.run_dir, chips=args.chip or None))
    return 0


def direct_train_default(name: str):
    """A default of :class:`golden.training.lee_config.LeeConfig` (one source for the CLI's defaults)."""

    return getattr(LeeConfig(), name)


def _parse_hidden(text: str) -> tuple:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise SnnCosimError(f"--hidden {text!r}: give layer sizes like 100 or 100,100 or 8c5s2,100")
    return tuple(int(item) if item.isdigit() else item for item in items)


def _cmd_train(args: argparse.Namespace) -> int:

    config = LeeConfig(
        hidden=_parse_hidden(args.hidden), steps=args.steps, test_steps=args.test_steps, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, kappa_hidden=args.kappa_hidden, kappa_output=args.kappa_output,
        leak_shift=args.leak_shift, max_rate=args.max_rate, weight_bits=args.weight_bits,
        membrane_bits=args.membrane_bits, seed=args.seed, rho=args.rho, lam=args.lam).validate()
    for name, limit in (("train_images", DEFAULT_TRAIN_SIZE), ("test_images", TEST_PART_SIZE)):
        value = getattr(args, name)
        if value is not None and not 1 <= value <= limit:
            raise SnnCosimError(f"--{name.replace('_', '-')} must be in 1..{limit}, got {value}")
    if args.threads < 1:
        raise SnnCosimError(f"--threads must be at least 1, got {args.threads}")
    check_output_path(args.output, "network", force=args.force, option="-o")
    import torch

    from golden.data import mnist as golden_data
    from golden.training import lee_trainer as direct_train

    if args.device is not None:
        try:
            device = torch.device(args.device)
        except RuntimeError:
            raise SnnCosimError(f"--device {args.device!r}: not a torch device (cpu, cuda, cuda:0, ...)") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise SnnCosimError(f"--device {args.device}: no CUDA device is available here; use --device cpu")
    else:
        device = None
    split = golden_data.default_split()
    train_images, train_labels = split.train_images[:args.train_images], split.train_labels[:args.train_images]
    test_images, test_labels = split.test_images[:args.test_images], split.test_labels[:args.test_images]
    result = direct_train.train_lee(train_images, train_labels, config, test_images=test_images,
                                    test_labels=test_labels, device=device, progress=not args.quiet,
                                    threads=args.threads)
    info = result.info
    path = result.network.save(args.output, force=args.force, option="-o")
    sizes = " -> ".join(str(s) for s in ["x".join(map(str, result.network.input_shape))] +
                        [("x".join(map(str, layer.out_shape))) for layer in result.network.layers])
    print(f"trained {sizes} (Lee 2016, LIF leak_shift {config.leak_shift}, κ hidden {config.kappa_hidden}, "
          f"output {config.kappa_output}) on {info['train_images']} images for {config.epochs} epochs "
          f"x {config.steps} steps")
    print(f"test accuracy at {info['test_steps']} steps on {info['test_images']} images: "
          f"float {100 * info['float_accuracy']:.2f}%, integer {100 * info['integer_accuracy']:.2f}%, "
          f"agreement {100 * info['agreement']:.2f}%")
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snncosim",
        description="Convert ANNs to integer SNNs, run them on Amaranth RTL under Verilator, prove equivalence.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="main job: train/convert the default MNIST MLP, golden vs RTL co-simulation")
    run.add_argument("--coding", choices=("rate", "weighted", "fs"), default="rate",
                     help="rate (Diehl 2015), weighted spikes (Kim 2018) or FS-neurons (Stoeckl & Maass 2021) "
                          "(default: rate)")
    run.add_argument("--phases", "-K", type=int, default=None,
                     help="phases K of weighted spikes (default 4) or FS-neurons (default 8)")
    run.add_argument("--skip-periods", "-S", type=int, default=0,
                     help="weighted spikes: output periods skipped (default: 0)")
    run.add_argument("--steps", "-T", type=int, default=None,
                     help="time steps per image (default: 64 for rate, 32 for weighted; FS: always L·K)")
    run.add_argument("--rtl-images", type=int, default=20, help="images co-simulated on the RTL (default: 20)")
    _add_cosim_options(run)
    run.add_argument("--test-images", type=int, default=None,
                     help="test-part images for the accuracy figure (default: all 2000)")
    run.add_argument("--lanes", "-P", type=int, default=8, help="crossbar lanes P (default: 8)")
    run.add_argument("--max-rate", type=float, default=1.0, help="input spike probability at full intensity")
    run.add_argument("--seed", type=int, default=0, help="seed of the rate encoder")
    run.add_argument("--out", type=Path, default=Path("runs/latest"), help="run directory (default: runs/latest)")
    run.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    run.add_argument("--no-rtl", action="store_true", help="golden model only (no Verilator)")
    run.add_argument("--waves", action="store_true", help="dump an FST waveform of the RTL run")
    run.add_argument("--no-report", action="store_true", help="skip the HTML report (RUN_DIR/report.html)")
    run.add_argument("--other-codings", type=int, default=500, metavar="N",
                     help="also run the other codings (golden) on N test images for the side-by-side report "
                          "(default: 500; 0: off)")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    _add_force_option(run, "--out")
    _add_conversion_options(run)
    run.set_defaults(func=_cmd_run)

    conv = sub.add_parser("convert", help="convert a torch network (default: the MNIST MLP) or a NIR graph to an "
                                          "integer network")
    conv.add_argument("source", nargs="?", type=Path, default=None, metavar="GRAPH.nir",
                      help="a NIR graph to import (snnTorch, Norse, sinabs, ... exports) instead of --model")
    conv.add_argument("-o", "--output", type=Path, required=True, help="output directory, e.g. mnist.snn")
    conv.add_argument("--model", default=None,
                      help="your network as FILE.py:FUNCTION (FUNCTION() returns the trained nn.Module; any input "
                           "shape the data set has)")
    conv.add_argument("--weights", type=Path, default=None, help="state_dict for --model (torch.save(model.state_dict()))")
    _add_data_options(conv, "calibration (the first 2,000 train images) and the ANN's test accuracy")
    conv.add_argument("--calibration", type=Path, default=None, help=argparse.SUPPRESS)  # the older name of --data
    conv.add_argument("--coding", choices=("rate", "weighted", "fs"), default="rate",
                      help="rate (Diehl 2015), weighted spikes (Kim 2018) or FS-neurons (Stöckl & Maass 2021) "
                           "(default: rate)")
    conv.add_argument("--phases", "-K", type=int, default=None,
                      help="weighted/FS coding: phases K (default: 4 weighted, 8 FS)")
    conv.add_argument("--skip-periods", "-S", type=int, default=0,
                      help="weighted spikes: output periods skipped (default: 0)")
    conv.add_argument("--spikenorm-steps", type=int, default=100,
                      help="--norm spikenorm: steps of the calibration spike trains (default: 100)")
    conv.add_argument("--spikenorm-images", type=int, default=256,
                      help="--norm spikenorm: calibration images (default: 256, Sengupta's mini-batch)")
    conv.add_argument("--quiet", "-q", action="store_true")
    _add_force_option(conv, "-o")
    _add_conversion_options(conv, norms=("data", "model", "percentile", "spikenorm"))
    add_nir_convert_options(conv)
    conv.set_defaults(func=_cmd_convert)
    add_export_nir_parser(sub)
    add_sweep_parser(sub)
    add_fpga_parser(sub)

    cos = sub.add_parser("cosim", help="verify YOUR integer network on YOUR data: golden model on the test part, "
                                       "N images on the RTL, the verdict, cycles, counters, energy, report")
    cos.add_argument("network", type=Path, metavar="NET.snn", help="an integer network (snncosim convert / train)")
    _add_data_options(cos, "the test part the network runs on")
    cos.add_argument("--steps", "-T", type=int, default=None,
                     help="time steps per image (default: 64 rate, 32 weighted; FS: always L·K)")
    cos.add_argument("--rtl-images", type=int, default=20, help="images co-simulated on the RTL (default: 20)")
    _add_cosim_options(cos)
    cos.add_argument("--test-images", type=int, default=None,
                     help="test-part images for the accuracy figure (default: all)")
    cos.add_argument("--lanes", "-P", type=int, default=8, help="crossbar lanes P (default: 8)")
    cos.add_argument("--seed", type=int, default=0, help="seed of the rate encoder")
    cos.add_argument("--out", type=Path, default=Path("runs/latest"), help="run directory (default: runs/latest)")
    cos.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    cos.add_argument("--no-rtl", action="store_true", help="golden model only (no Verilator)")
    cos.add_argument("--waves", action="store_true", help="dump an FST waveform of the RTL run")
    cos.add_argument("--no-report", action="store_true", help="skip the HTML report (RUN_DIR/report.html)")
    cos.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    _add_force_option(cos, "--out")
    cos.set_defaults(func=_cmd_cosim)

    tr = sub.add_parser("train", help="train a spiking network directly (Lee 2016) and save the integer network")
    tr.add_argument("-o", "--output", type=Path, required=True, help="output directory, e.g. lee.snn")
    tr.add_argument("--hidden", default=",".join(str(h) for h in direct_train_default("hidden")),
                    help="hidden layers, comma-separated: dense sizes and convolutions CcK[sS][pP], e.g. 8c5s2,100 "
                         "(default: %(default)s)")
    for flags, kind, what in (
            (("--steps", "-T"), int, "time steps per training image"),
            (("--epochs",), int, "epochs over the training images"),
            (("--batch-size",), int, "mini-batch size"),
            (("--lr",), float, "Adam learning rate of weights and thresholds"),
            (("--kappa-hidden",), float, "WTA strength κ of the first hidden layer, in [-1, 0]"),
            (("--kappa-output",), float, "WTA strength κ of the output layer, in [-1, 0]"),
            (("--rho",), float, "threshold regularisation ρ"),
            (("--lam",), float, "exponential weight regularisation λ"),
            (("--leak-shift",), int, "LIF leak v >>> k")):
        name = flags[0][2:].replace("-", "_")
        tr.add_argument(*flags, type=kind, default=direct_train_default(name), help=f"{what} (default: %(default)s)")
    tr.add_argument("--test-steps", type=int, default=None, help="time steps per test image (default: --steps)")
    tr.add_argument("--max-rate", type=float, default=1.0, help="input spike probability at full intensity")
    tr.add_argument("--weight-bits", type=int, default=8)
    tr.add_argument("--membrane-bits", type=int, default=24)
    tr.add_argument("--seed", type=int, default=0, help="seed of initialisation, shuffling and spikes")
    tr.add_argument("--device", default=None, help="torch device (default: cuda when present, else cpu)")
    tr.add_argument("--threads", type=int, default=1, help="CPU threads (default: 1)")
    tr.add_argument("--train-images", type=int, default=None,
                    help="use only the first N images of the 8000-image train part")
    tr.add_argument("--test-images", type=int, default=None,
                    help="evaluate on the first N images of the 2000-image test part")
    tr.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _add_force_option(tr, "-o")
    tr.set_defaults(func=_cmd_train)

    ver = sub.add_parser("verilog", help="write synthesizable Verilog and memory-initialisation files")
    ver.add_argument("network", type=Path, help="integer-network directory (from 'snncosim convert' or a run)")
    ver.add_argument("-o", "--output", type=Path, required=True, help="output directory")
    ver.add_argument("--lanes", "-P", type=int, default=8, help="crossbar lanes P (default: 8)")
    _add_force_option(ver, "-o")
    ver.set_defaults(func=_cmd_verilog)

    cmp_ = sub.add_parser("compare", help="compare a saved golden trace with a saved RTL trace")
    cmp_.add_argument("golden", type=Path)
    cmp_.add_argument("rtl", type=Path)
    cmp_.set_defaults(func=_cmd_compare)

    chips = sub.add_parser("chips", help="list the energy models of target chips, with their sources and scope")
    chips.add_argument("models", nargs="*", help="chip-model names or YAML files (default: every shipped model)")
    chips.set_defaults(func=_cmd_chips)

    rep = sub.add_parser("report", help="write RUN_DIR/report.html (plots, verdict, energy per chip model)")
    rep.add_argument("run_dir", type=Path, help="run directory written by 'snncosim run'")
    rep.add_argument("--chip", action="append", default=None,
                     help="chip-model name or YAML file (repeatable; default: every shipped model)")
    rep.set_defaults(func=_cmd_report)
    return parser


def _raise_interrupted(signum, frame) -> None:
    for sig in INTERRUPT_SIGNALS:  # a second signal must not interrupt the clean-up of the first
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signum)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _raise_interrupted) for sig in INTERRUPT_SIGNALS}
    try:
        return args.func(args)
    except SnnCosimError as exc:
        print(f"snncosim: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the user gave that cannot be read or written (permissions, full disk, ...)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"snncosim: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"snncosim: interrupted ({signal.Signals(signum).name}); outputs in progress were removed",
              file=sys.stderr)
        return 128 + int(signum)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
