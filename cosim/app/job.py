"""The main job: train (or reuse) a network, convert it — or take the user's integer network — measure ANN vs SNN
accuracy on a data set, co-simulate on the RTL.

``snncosim run`` (the embedded MNIST default) and ``snncosim cosim NET.snn --data DATA`` are thin wrappers around
:func:`run_job`, which calls the stages in order inside the staged run directory: :func:`load_data`, then
:func:`train_model` + :func:`convert_model` (``run``) or :func:`load_network` (``cosim``), :func:`build_engine` (only
with RTL images),
:func:`evaluate_golden` and :func:`evaluate_other_codings`, :func:`summarize` (the JobResult of the golden part),
:func:`cosimulate_images` + :func:`record_cosimulation`, :func:`estimate_energy` and :func:`write_html_report`. Each
stage takes what it needs and returns a small dataclass. Every phase reports its wall time so that the benchmark and
the user can see where the minutes go.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from golden.conversion import DEFAULT_NEURON, pipeline
from golden.conversion.pipeline import Recipe
from golden.core.counters import COUNTER_NAMES
from golden.core.errors import SnnCosimError, TraceMismatch
from golden.core.files import staged_output
from golden.core.network import IntegerNetwork
from golden.data.dataset import Dataset, load_dataset
from golden.simulation.inputs import default_steps, encode_inputs
from golden.simulation.simulate import IntegerSimulator
from golden.training import ann_trainer as golden_train

from .options import CODINGS, JobOptions


@dataclass
class JobResult:
    options: dict
    ann_accuracy: float | None  # None: unknown (a network file that records no ANN accuracy on this data)
    snn_accuracy: float
    test_images: int
    steps: int
    coding_description: str = ""
    rtl_images: int = 0
    equivalent: bool | None = None
    first_difference: str | None = None
    golden_totals: dict = field(default_factory=dict)
    rtl_totals: dict = field(default_factory=dict)
    golden_totals_rtl_images: dict = field(default_factory=dict)
    rtl_accuracy: float | None = None
    spikes_per_neuron: list = field(default_factory=list)
    ann_macs_per_image: int = 0
    cycles_per_image: float = 0.0
    cycle_bound_ratio: float | None = None
    rtl_cycles_per_second: float | None = None
    rtl_images_per_second: float | None = None
    rtl_jobs: int = 0  # simulator processes the co-simulation ran on at a time
    rtl_check: str = ""  # "digest" (per-image digests, full traces of mismatching images) or "full trace"
    rtl_mismatched_images: int = 0
    peak_rss_mb: float | None = None  # peak resident memory of snncosim itself
    simulator_peak_rss_mb: float | None = None  # of the largest simulator process
    waves_file: str = ""
    energy_lines: list = field(default_factory=list)
    energy_source: str = ""
    report: str = ""
    phase_seconds: dict = field(default_factory=dict)
    out_dir: str = ""
    title: str = "MNIST MLP"  # what was verified: the default network, or NET.snn on DATA
    data: str = ""  # the data set

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


class _Phases:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str):
        phases = self

        class _Timer:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                phases.seconds[name] = round(time.perf_counter() - self.t0, 3)

        return _Timer()


def recipe_of(options: JobOptions) -> Recipe:
    """The conversion recipe of the job's options (golden.conversion.pipeline)."""
    return Recipe(coding=options.coding, norm="data" if options.coding == "fs" else options.norm,  # FS fits its own
                  percentile=options.percentile,
                  neuron=options.neuron_params() if options.coding == "rate" else DEFAULT_NEURON,
                  weight_bits=options.weight_bits, membrane_bits=options.membrane_bits,
                  max_rate=options.max_rate if options.coding == "rate" else 1.0,
                  phases=options.phases if options.coding != "rate" else None, skip_periods=options.skip_periods)


def convert_for_coding(model, calibration_images, options: JobOptions):
    """Convert ``model`` for the chosen coding; return the integer network and an encoder
    ``encode(pixel_codes [B, n] uint8, first_image_index) -> bool spikes [T, B, n]`` for its input layer. An FS
    conversion sets ``options.steps`` to its latency L·K."""
    converted = pipeline.convert_model(model, calibration_images, recipe_of(options))
    if converted.steps is not None:
        options.steps = converted.steps

    def encode(pixels, first_index):
        return converted.encode(pixels, options.steps, seed=options.seed, first_index=first_index)
    return converted.integer, encode


def output_predictions_per_step(trace, network: IntegerNetwork) -> np.ndarray:
    """``int64 [N, T]``: the class the run would report if it stopped after each step (ties to the lowest index):
    argmax of the output membrane for a non-spiking output layer, of cumulative output spikes otherwise."""
    if not network.layers[-1].neuron.spiking:
        if trace.membranes is None:
            raise SnnCosimError("the trace of an accumulator-output network must record membranes")
        return np.argmax(trace.membranes[-1], axis=-1)
    return np.argmax(np.cumsum(trace.spikes[-1], axis=1, dtype=np.int64), axis=-1)


def coding_curve(trace, network: IntegerNetwork, labels: np.ndarray) -> dict:
    """Accuracy, cumulative spikes and ACs per image after each step of a golden trace (curves.json format)."""
    predictions = output_predictions_per_step(trace, network)
    return {
        "steps": list(range(1, trace.n_steps + 1)),
        "accuracy": (predictions == labels[:, None]).mean(axis=0).tolist(),
        "spikes_per_image": (np.cumsum(trace.counter("spikes").sum(axis=(0, 2))) / trace.n_images).tolist(),
        "acs_per_image": (np.cumsum(trace.counter("acs").sum(axis=(0, 2))) / trace.n_images).tolist(),
        "images": trace.n_images,
    }


def run_job(options: JobOptions) -> JobResult:
    """Run the main job into ``options.out_dir``. Every option is checked first; the run directory is built in a
    hidden sibling, locked against a second run, and renamed into place when it is whole (golden.core.files.
    staged_output): an interrupted run leaves nothing, a failed one is kept marked incomplete (its logs are
    inside; ``snncosim report`` refuses it), and a directory snncosim did not write is never touched."""
    options.validate()
    out_dir = Path(options.out_dir)
    with staged_output(out_dir, "run", force=options.force, option="--out", publish_failures=_keep_evidence) as work:
        try:
            return _run_job_in(options, work, out_dir)
        except SnnCosimError as exc:  # name the published directory, not the staging one
            message = str(exc).replace(str(work.resolve()), str(out_dir)).replace(str(work), str(out_dir))
            raise type(exc)(message) from None


def _keep_evidence(exc: BaseException) -> bool:
    """A run that failed in the simulator, or whose RTL output was inconsistent, is kept (marked incomplete) for
    its logs and partial traces; so is one that failed for a reason that is not a user error (a bug: evidence).
    User errors leave nothing."""
    from cosim.runner import SimulationError

    return isinstance(exc, (SimulationError, TraceMismatch)) or not isinstance(exc, SnnCosimError)


def _run_job_in(options: JobOptions, work: Path, out_dir: Path) -> JobResult:
    """The job, writing into the staging directory ``work``; paths it reports name ``out_dir``: the stages below,
    in order, each timed as one phase."""
    phases = _Phases()

    with phases("data"):
        data = load_data(options)
    if options.network is None:
        with phases("train"):
            trained = train_model(options, data)
        with phases("convert"):
            converted = convert_model(options, trained.model, data, work)
    else:
        with phases("load"):
            converted = load_network(options, data, work)
        trained = TrainedModel(model=None, ann_accuracy=recorded_ann_accuracy(converted.network, data))
    rtl_n = min(options.rtl_images, data.n_test) if options.rtl else 0
    engine = None
    if rtl_n > 0:  # the toolchain is needed (and checked) only here, before the long golden phase
        with phases("build"):
            engine = build_engine(options, converted.network).engine

    with phases("golden" if options.other_codings == 0 else "golden (all codings)"):
        evaluation = evaluate_golden(options, converted, data, trained.ann_accuracy, rtl_n)
        curves = evaluation.curves
        if options.other_codings > 0 and trained.model is not None:
            curves.update(evaluate_other_codings(options, trained.model, data, work).curves)
        (work / "curves.json").write_text(json.dumps(curves))
    result = summarize(options, trained, converted.network, evaluation, data.n_test, out_dir)
    result.data = data.dataset.describe()
    if options.network is not None:
        result.title = f"{options.network} on {data.dataset.name}"
        result.coding_description = describe_network(converted.network)

    cosim = None
    if engine is not None:
        cosim = cosimulate_images(options, converted.network, engine, evaluation, work, phases)
        record_cosimulation(result, cosim, data, work, out_dir)
    with phases("energy"):
        estimate = estimate_energy(options, converted.network, evaluation, data.n_test, cosim)
        result.energy_source = estimate.source
        result.energy_lines = estimate.lines
    result.phase_seconds = phases.seconds
    (work / "summary.json").write_text(result.to_json())
    if options.report:
        with phases("report"):
            result.report = write_html_report(work, out_dir)
        result.phase_seconds = phases.seconds
        (work / "summary.json").write_text(result.to_json())
    return result


# The stages of the main job. Each takes what it needs and returns a small dataclass; run_job calls them in order.


@dataclass
class JobData:
    """The images of the job: the calibration images (the first 2,000 of the train part) and the test part, as
    torch tensors of 8-bit codes, and the data set they come from."""
    dataset: Dataset
    calibration_images: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor

    @property
    def n_test(self) -> int:
        return len(self.test_images)


def load_data(options: JobOptions) -> JobData:
    """The data set of ``options.data`` (default: the embedded MNIST split); ``options.test_images`` limits the
    test part."""
    dataset = load_dataset(options.data, scale=options.input_scale, value_range=options.value_range)
    available = len(dataset.test_images)
    if options.test_images is not None and options.test_images > available:
        raise SnnCosimError(f"--test-images {options.test_images} is more than the {available} test images of "
                            f"{dataset.name}")
    test_images, test_labels = dataset.test_part(options.test_images)
    if options.rtl and options.rtl_images > len(test_images):
        raise SnnCosimError(f"--rtl-images {options.rtl_images} is more than the {len(test_images)} test images "
                            f"selected")
    return JobData(dataset=dataset, calibration_images=torch.from_numpy(dataset.calibration_images()),
                   test_images=torch.from_numpy(test_images), test_labels=torch.from_numpy(test_labels))


@dataclass
class TrainedModel:
    model: torch.nn.Module | None  # None: the job verifies a network file
    ann_accuracy: float | None


def train_model(options: JobOptions, data: JobData) -> TrainedModel:
    """The project's MNIST MLP, trained once and cached under ``options.cache_dir``; its ANN test accuracy."""
    model = golden_train.default_mlp(options.cache_dir, progress=options.progress)
    return TrainedModel(model=model, ann_accuracy=golden_train.evaluate(model, data.test_images, data.test_labels))


@dataclass
class ConvertedNetwork:
    network: IntegerNetwork
    encode: object  # encode(pixel_codes [B, n] uint8, first_image_index) -> bool spikes [T, B, n]


def load_network(options: JobOptions, data: JobData, work: Path) -> ConvertedNetwork:
    """``snncosim cosim``: the user's integer network (``options.network``), checked against the data set; the
    coding, K and T (default: the coding's, L·K for FS) come from it. A copy is written as ``network.snn``."""
    network = IntegerNetwork.load(options.network)
    if network.input_coding == "direct":
        raise SnnCosimError(f"{options.network}: input coding 'direct' feeds codes, not spikes, to layer 1; the "
                            f"engine takes spikes (convert with rate, weighted or FS coding)")
    data.dataset.check_fits(network)
    options.coding = "fs" if network.is_fs else network.input_coding
    options.phases = int(network.phases)
    options.skip_periods = int(network.skip_periods)
    if network.is_fs and options.steps not in (None, network.fs_latency):
        raise SnnCosimError(f"--steps {options.steps}: an FS network takes exactly L·K = {network.fs_latency} steps")
    options.steps = default_steps(network) if options.steps is None else options.steps
    if options.coding == "weighted" and options.skip_periods * options.phases >= options.steps:
        raise SnnCosimError(f"--steps {options.steps} leaves no step of output integration (S·K = "
                            f"{options.skip_periods * options.phases}); use more steps")
    network.save(work / "network.snn")

    def encode(pixels, first_index):
        return encode_inputs(network, pixels, options.steps, seed=options.seed, first_index=first_index)
    return ConvertedNetwork(network=network, encode=encode)


def describe_network(network: IntegerNetwork) -> str:
    """The coding and neuron of a network file, as the run table names them."""
    if network.is_fs:
        return f"FS-neurons K={network.phases}"
    if network.input_coding == "weighted":
        return f"weighted spikes K={network.phases} S={network.skip_periods}"
    neuron = network.layers[0].neuron
    leak = f" leak>>{neuron.leak_shift}" if neuron.kind == "lif" else ""
    return f"rate, {neuron.kind.upper()} reset={neuron.reset}{leak}"


def recorded_ann_accuracy(network: IntegerNetwork, data: JobData) -> float | None:
    """The ANN accuracy the network file records (``metadata["ann"]["accuracy"]``, written by ``snncosim convert
    --data``) when it was measured on this data set's test part of the same size, else None."""
    ann = network.metadata.get("ann") if isinstance(network.metadata, dict) else None
    record = ann.get("accuracy") if isinstance(ann, dict) else None
    if isinstance(record, dict) and record.get("data") == data.dataset.name and record.get("images") == data.n_test:
        return float(record["value"])
    return None


def convert_model(options: JobOptions, model, data: JobData, work: Path) -> ConvertedNetwork:
    """Convert for ``options.coding`` (an FS conversion sets ``options.steps`` to its latency) and write
    ``network.snn``."""
    network, encode = convert_for_coding(model, data.calibration_images, options)
    network.save(work / "network.snn")
    return ConvertedNetwork(network=network, encode=encode)


@dataclass
class BuiltEngine:
    engine: object  # cosim.session.Engine


def build_engine(options: JobOptions, network: IntegerNetwork) -> BuiltEngine:
    """Build (or reuse from the cache) the RTL engine sized for ``network``; checks the toolchain."""
    from cosim.session import prepare_engine
    from hw.config import EngineConfig

    return BuiltEngine(prepare_engine(EngineConfig.for_network(network, lanes=options.lanes), waves=options.waves))


@dataclass
class GoldenEvaluation:
    """The golden model on the whole test part: accuracy, counter totals, spikes per layer, the curves of
    curves.json for the chosen coding, and the co-simulation's images: ``rtl_images`` of them, whose input spikes
    ``cosim_images(start, stop)`` encodes on demand (``[T, stop - start, n]``; every image draws the same spikes in
    any batch), never all at once."""
    simulator: IntegerSimulator
    snn_accuracy: float
    totals: dict
    spikes_per_layer: np.ndarray
    curves: dict
    rtl_images: int = 0
    cosim_images: object = None  # cosim_images(start, stop) -> bool [T, stop - start, n_in]


def evaluate_golden(options: JobOptions, converted: ConvertedNetwork, data: JobData, ann_accuracy: float | None,
                    rtl_images: int) -> GoldenEvaluation:
    network, encode = converted.network, converted.encode
    simulator = IntegerSimulator(network)
    n_test = data.n_test
    codes = torch.as_tensor(np.asarray(data.test_images)).reshape(n_test, -1)
    correct = 0
    chunk = 250
    totals = None
    spikes_per_layer = np.zeros(len(network.layers))
    curve_correct = np.zeros(options.steps)
    curve_spikes = np.zeros(options.steps)
    curve_acs = np.zeros(options.steps)
    bar = tqdm(total=n_test, desc=f"golden {options.coding} SNN, T={options.steps}", unit="img",
               disable=not options.progress, leave=False)
    for start in range(0, n_test, chunk):
        stop = min(n_test, start + chunk)
        spikes_in = encode(codes[start:stop], start)
        trace = simulator.run(spikes_in, lanes=options.lanes, record_membranes=None)
        labels = np.asarray(data.test_labels[start:stop])
        correct += int((trace.predictions == labels).sum())
        curve_correct += (output_predictions_per_step(trace, network) == labels[:, None]).sum(axis=0)
        curve_spikes += trace.counter("spikes").sum(axis=(0, 2))
        curve_acs += trace.counter("acs").sum(axis=(0, 2))
        chunk_totals = trace.totals()
        totals = chunk_totals if totals is None else {k: totals[k] + v for k, v in chunk_totals.items()}
        spikes_per_layer += np.array([s.sum() for s in trace.spikes], dtype=float)
        bar.update(stop - start)
    bar.close()
    curves = {
        options.coding: {
            "steps": list(range(1, options.steps + 1)),
            "accuracy": (curve_correct / n_test).tolist(),
            "spikes_per_image": (np.cumsum(curve_spikes) / n_test).tolist(),
            "acs_per_image": (np.cumsum(curve_acs) / n_test).tolist(),
        },
        "ann_accuracy": None if ann_accuracy is None else float(ann_accuracy),
    }

    def cosim_images(start: int, stop: int) -> torch.Tensor:
        return encode(codes[start:stop], start)
    return GoldenEvaluation(simulator=simulator, snn_accuracy=correct / n_test, totals=totals,
                            spikes_per_layer=spikes_per_layer, curves=curves, rtl_images=rtl_images,
                            cosim_images=cosim_images)


@dataclass
class OtherCodings:
    """curves.json entries of the other codings (each at its default length); their traces are saved under
    ``traces/``."""
    curves: dict


def evaluate_other_codings(options: JobOptions, model, data: JobData, work: Path) -> OtherCodings:
    """The golden model with the codings other than ``options.coding`` on the first ``options.other_codings``
    test images."""
    from dataclasses import replace

    n_test = data.n_test
    codes = torch.as_tensor(np.asarray(data.test_images)).reshape(n_test, -1)
    curves = {}
    for coding in CODINGS:
        if coding == options.coding:
            continue
        other = replace(options, coding=coding, steps=None, phases=None, rtl=False)
        other.validate()
        other_net, other_encode = convert_for_coding(model, data.calibration_images, other)
        n_other = min(options.other_codings, n_test)
        other_trace = IntegerSimulator(other_net).run(other_encode(codes[:n_other], 0), lanes=options.lanes)
        curves[coding] = coding_curve(other_trace, other_net, np.asarray(data.test_labels[:n_other]))
        (work / "traces").mkdir(exist_ok=True)
        other_trace.meta["coding"] = other.describe()
        other_trace.save(work / "traces" / f"{coding}_golden.npz")
    return OtherCodings(curves)


def summarize(options: JobOptions, trained: TrainedModel, network: IntegerNetwork, evaluation: GoldenEvaluation,
              n_test: int, out_dir: Path) -> JobResult:
    """The JobResult of the golden part: accuracies, totals, spikes per neuron, MACs and cycles per image."""
    from golden.core.cycle_model import fixed_overhead
    from golden.core.macs import ann_macs

    totals = evaluation.totals
    result = JobResult(
        options={k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
        ann_accuracy=None if trained.ann_accuracy is None else float(trained.ann_accuracy),
        snn_accuracy=float(evaluation.snn_accuracy), test_images=n_test,
        steps=options.steps, coding_description=options.describe(), golden_totals=totals,
        spikes_per_neuron=[float(s / n_test / layer.n_out)
                           for s, layer in zip(evaluation.spikes_per_layer, network.layers)],
        ann_macs_per_image=int(ann_macs(network)),
        cycles_per_image=(totals["cycles"] / n_test),
        out_dir=str(out_dir),
    )
    fixed = fixed_overhead(network.layer_sizes, options.lanes, options.steps, n_test)
    result.cycle_bound_ratio = float((totals["cycles"] - fixed) / (totals["acs"] / options.lanes)) \
        if totals["acs"] else None
    return result


@dataclass
class Cosimulation:
    """The first ``images`` test images on the RTL (sharded over ``--jobs`` simulator processes) and on the golden
    model, checked by per-image digests or, with ``--full-trace``, by full traces (cosim.shards)."""
    images: int
    run: object  # cosim.shards.ShardedRun


def cosimulate_images(options: JobOptions, network: IntegerNetwork, engine, evaluation: GoldenEvaluation,
                      work: Path, phases: _Phases) -> Cosimulation:
    """The RTL run of the first ``evaluation.rtl_images`` images against the golden model (the phase ``rtl``;
    the golden side runs chunk by chunk beside the simulators). Written: ``digests.npz`` (per image: both digests,
    predictions, cycles, totals); with full traces (``--full-trace``, ``--waves``, or up to 100 images) ``golden_trace.npz`` / ``rtl_trace.npz``
    of every image; in digest mode on a mismatch the same files for the re-run images (their indices in the run
    are ``meta["images"]``) and ``mismatch.txt``."""
    from cosim.shards import cosimulate_sharded

    simulator = evaluation.simulator

    def golden(spikes):
        trace = simulator.run(torch.as_tensor(spikes), lanes=options.lanes, record_membranes=True)
        trace.meta["network_sha256"] = network.digest()
        return trace

    full = options.check_mode_full_trace()
    with phases("rtl"):
        run = cosimulate_sharded(network, evaluation.cosim_images, evaluation.rtl_images, engine=engine,
                                 jobs=1 if options.waves else options.jobs, work_dir=work / "rtl", full_trace=full,
                                 golden=golden, progress=options.progress, waves=options.waves)
        run.save_digests(work / "digests.npz")
        if run.golden_trace is not None:  # digest mode: the re-run images, named in the traces' meta["images"]
            run.golden_trace.save(work / "golden_trace.npz")
            run.rtl_trace.save(work / "rtl_trace.npz")
            if not run.equivalent and run.comparison is not None:
                (work / "mismatch.txt").write_text(f"{run.comparison.summary()}\nre-check: snncosim compare "
                                                   f"golden_trace.npz rtl_trace.npz\n")
    return Cosimulation(images=evaluation.rtl_images, run=run)


def record_cosimulation(result: JobResult, cosim: Cosimulation, data: JobData, work: Path, out_dir: Path) -> None:
    """The co-simulation's fields of ``result``; the waves file is named under ``out_dir``."""
    run = cosim.run
    result.rtl_images = cosim.images
    result.equivalent = run.equivalent
    result.first_difference = run.first_difference
    result.rtl_totals = run.totals("rtl")
    result.golden_totals_rtl_images = run.totals("golden")
    labels = np.asarray(data.test_labels[:cosim.images])
    result.rtl_accuracy = float((run.predictions == labels).mean())
    result.rtl_cycles_per_second = float(run.cycles_per_second)
    result.rtl_images_per_second = float(run.images_per_second)
    result.rtl_jobs = run.jobs
    result.rtl_check = "full trace" if run.full_trace else "digest"
    result.rtl_mismatched_images = int(run.mismatched.size)
    result.peak_rss_mb = round(run.peak_rss_bytes / 2 ** 20, 1)
    result.simulator_peak_rss_mb = round(run.peak_child_rss_bytes / 2 ** 20, 1)
    result.waves_file = str(out_dir / Path(run.waves_file).relative_to(work.resolve())) if run.waves_file else ""


@dataclass
class EnergyEstimate:
    source: str
    lines: list


def estimate_energy(options: JobOptions, network: IntegerNetwork, evaluation: GoldenEvaluation, n_test: int,
                    cosim: Cosimulation | None) -> EnergyEstimate:
    """The chips' energy per image from the RTL hardware counters when there was a co-simulation (checked equal
    to the golden counts), else from the golden counts of the test part."""
    from golden.core.macs import ann_macs_per_layer
    from golden.energy import estimate as energy

    if cosim is not None:
        counts = cosim_counts(cosim.run)
        source = f"RTL hardware counters of {cosim.images} co-simulated images"
    else:
        from golden.core.cycle_model import C_IMAGE

        counts = energy.Counts.from_totals(evaluation.totals, n_test, overhead_cycles=C_IMAGE * n_test)
        source = f"golden counts of {n_test} test images"
    comparisons = energy.compare_chips(counts, ann_macs_per_layer(network), energy.load_chips(),
                                       energy.WordWidths.of(network, options.lanes))
    return EnergyEstimate(source=source, lines=energy.energy_table(comparisons))


def cosim_counts(run):
    """``golden.energy.estimate.Counts`` of a sharded run: per layer the counters the digests proved equal on both
    sides (``run.layer_counters``), the per-image overhead cycles from the RTL's own cycle counts."""
    from golden.energy.estimate import Counts

    rows = tuple(tuple(int(v) for v in row) for row in run.layer_counters)
    layer_cycles = sum(row[COUNTER_NAMES.index("cycles")] for row in rows)
    return Counts(rows, run.n_images, int(run.image_cycles.sum()) - layer_cycles, True, "rtl")


def write_html_report(work: Path, out_dir: Path) -> str:
    """``report.html`` of the run being written in ``work``; returns its published path."""
    from .report_html import write_report

    write_report(work, in_progress=True, shown_as=out_dir)
    return str(out_dir / "report.html")
