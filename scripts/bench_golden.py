"""The golden model's speed against SpikingJelly 2.0 and snnTorch on the same network, T, batch and threads.

    python3 -m pip install -q --no-deps --target .bench-env spikingjelly==2.0.0 snntorch==1.0.0 loguru==0.7.3
    python3 scripts/bench_golden.py [--images 2000] [--steps 100] [--batch 256] [--threads 1] [--rounds 4]

The peers are installed in the benchmark's own folder ``.bench-env`` (git-ignored; ``--install`` runs the line above),
never as dependencies of the project; a peer that cannot be imported is left out with a note.

The network is the default MNIST MLP (784-256-10) converted for rate coding as ``snncosim run`` does
(``cosim.api.convert``), or ``--network FILE.snn`` (dense IF layers, reset by subtraction, one threshold per
layer). The peers run that network with identical weights: integer weights and thresholds as float32 in
``nn.Linear`` + SpikingJelly's ``IFNode`` (soft reset, single-step mode: SpikingJelly's converted network) or
snnTorch's ``Leaky`` with beta = 1 (IF, reset by subtraction). SpikingJelly's IF neuron (fire at v ≥ θ, then
v − θ) is the project's IF neuron, so on the same input spikes its predictions must equal the golden model's; the
script checks that. snnTorch fires at v > θ, so its accuracy may differ by a few images.

Timed contenders, interleaved within each round (the order rotates), medians over ``--rounds``:

* ``golden run``: ``IntegerSimulator.run`` — every layer's spikes, the 9 counters per (image, step, layer), cycles.
* ``golden run, no membranes``: the same with ``record_membranes=False`` (the default for a spiking output layer).
* ``golden output spikes``: ``IntegerSimulator.output_spikes`` (output layer only).
* ``golden run, pcg64x16 input``: ``golden run`` on the spikes of ``rate_encode(generator="pcg64x16")``, the
  documented opt-in encoder with other spikes (so other predictions: "same predictions" says no).
* ``SpikingJelly`` / ``snnTorch``: output spike counts of every image.

"without encoding": every contender gets the same precomputed input spikes (``rate_encode``). "with encoding":
the golden model also runs ``rate_encode`` (seeded per image, the RTL's spikes); the peers draw their own Bernoulli
spikes per step from the pixel intensities (SpikingJelly's ``PoissonEncoder``, snnTorch's ``spikegen.rate``).
Ratios are speeds relative to SpikingJelly's converted network (> 1: faster). The machine may be shared: the
figures are medians of interleaved rounds, not best cases.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
BENCH_ENV = ROOT / ".bench-env"
PEERS = ["spikingjelly==2.0.0", "snntorch==1.0.0", "loguru==0.7.3"]
sys.path.insert(0, str(ROOT))

from golden.core.errors import SnnCosimError  # noqa: E402
from golden.core.network import DenseLayer, IntegerNetwork  # noqa: E402
from golden.simulation.encoding import rate_encode  # noqa: E402
from golden.simulation.inputs import recorded_max_rate  # noqa: E402
from golden.simulation.simulate import IntegerSimulator, predict  # noqa: E402


def install_peers() -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(BENCH_ENV), *PEERS],
                   check=True)


def import_peers() -> dict:
    """The peer modules that import from .bench-env (name → module tuple); missing ones are reported."""
    sys.path.append(str(BENCH_ENV))
    peers = {}
    try:
        from spikingjelly.activation_based import encoding, functional, neuron
        peers["SpikingJelly"] = (encoding, functional, neuron)
    except ImportError as error:
        print(f"note: SpikingJelly left out ({error}); run with --install")
    try:
        import snntorch
        from snntorch import spikegen
        peers["snnTorch"] = (snntorch, spikegen)
    except ImportError as error:
        print(f"note: snnTorch left out ({error}); run with --install")
    return peers


def default_network() -> IntegerNetwork:
    from cosim.api import convert, load_data
    from golden.training.ann_trainer import default_mlp

    return convert(default_mlp(), load_data("mnist"), coding="rate")


def peer_layers(network: IntegerNetwork) -> list[tuple[nn.Linear, float]]:
    """``nn.Linear`` (float32, the integer weights and biases) and the scalar threshold of every layer."""
    layers = []
    for index, layer in enumerate(network.layers, start=1):
        theta = np.unique(np.asarray(layer.threshold))
        if not isinstance(layer, DenseLayer) or layer.neuron.kind != "if" or layer.neuron.reset != "subtract" \
                or layer.neuron.floor is not None or theta.size != 1 or network.input_coding != "rate":
            raise SnnCosimError(f"layer {index}: the peers run rate-coded dense IF layers with reset by subtraction "
                                f"and one threshold per layer")
        linear = nn.Linear(layer.n_in, layer.n_out)
        with torch.no_grad():
            linear.weight.copy_(torch.as_tensor(np.asarray(layer.weight), dtype=torch.float32))
            linear.bias.copy_(torch.as_tensor(np.asarray(layer.bias), dtype=torch.float32))
        layers.append((linear, float(theta[0])))
    return layers


def spikingjelly_runner(modules, layers, batch: int):
    encoding, functional, neuron = modules
    blocks = []
    for linear, theta in layers:
        blocks += [linear, neuron.IFNode(v_threshold=theta, v_reset=None, step_mode="s")]
    model = nn.Sequential(*blocks).eval()
    poisson = encoding.PoissonEncoder(step_mode="s")

    def run(spikes=None, intensity=None, steps=None) -> np.ndarray:
        n_images = spikes.shape[1] if spikes is not None else intensity.shape[0]
        steps = spikes.shape[0] if spikes is not None else steps
        counts = np.empty((n_images, layers[-1][0].out_features), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, n_images, batch):
                functional.reset_net(model)
                total = 0
                for t in range(steps):
                    x = spikes[t, start:start + batch].float() if spikes is not None \
                        else poisson(intensity[start:start + batch])
                    total = total + model(x)
                counts[start:start + batch] = total.numpy()
        return predict(counts)
    return run


def snntorch_runner(modules, layers, batch: int):
    snntorch, spikegen = modules
    linears = [linear for linear, _ in layers]
    neurons = [snntorch.Leaky(beta=1.0, threshold=theta, reset_mechanism="subtract") for _, theta in layers]

    def run(spikes=None, intensity=None, steps=None) -> np.ndarray:
        n_images = spikes.shape[1] if spikes is not None else intensity.shape[0]
        counts = np.empty((n_images, linears[-1].out_features), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, n_images, batch):
                x_all = spikes[:, start:start + batch].float() if spikes is not None \
                    else spikegen.rate(intensity[start:start + batch], num_steps=steps)
                mems = [lif.init_leaky() for lif in neurons]
                total = 0
                for t in range(x_all.shape[0]):
                    x = x_all[t]
                    for i, (linear, lif) in enumerate(zip(linears, neurons)):
                        x, mems[i] = lif(linear(x), mems[i])
                    total = total + x
                counts[start:start + batch] = total.numpy()
        return predict(counts)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--network", type=Path, help="an .snn file (default: the default MNIST MLP, rate coding)")
    parser.add_argument("--install", action="store_true", help="install the peers into .bench-env first")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.install:
        install_peers()
    peers = import_peers()

    from golden.data.mnist import default_split
    split = default_split()
    network = IntegerNetwork.load(args.network) if args.network else default_network()
    n = min(args.images, int(split.test_images.shape[0]))
    codes = torch.as_tensor(np.asarray(split.test_images[:n])).reshape(n, -1)
    labels = np.asarray(split.test_labels[:n])
    max_rate = recorded_max_rate(network)
    intensity = codes.to(torch.float32) * (max_rate / 255.0)
    spikes = rate_encode(codes, args.steps, max_rate=max_rate, seed=args.seed)
    pcg_spikes = rate_encode(codes, args.steps, max_rate=max_rate, seed=args.seed, generator="pcg64x16")
    simulator = IntegerSimulator(network, device="cpu")
    T, B = args.steps, args.batch

    def golden_run(x):
        return simulator.run(x, batch_size=B).predictions

    def golden_light(x):
        return simulator.run(x, batch_size=B, record_membranes=False).predictions

    def golden_output(x):
        return predict(simulator.output_spikes(x, batch_size=B).sum(axis=1))

    def encode(generator="mt19937"):
        return rate_encode(codes, T, max_rate=max_rate, seed=args.seed, generator=generator)

    contenders = {
        "golden run": (lambda: golden_run(spikes), lambda: golden_run(encode())),
        "golden run, no membranes": (lambda: golden_light(spikes), lambda: golden_light(encode())),
        "golden output spikes": (lambda: golden_output(spikes), lambda: golden_output(encode())),
        "golden run, pcg64x16 input": (lambda: golden_run(pcg_spikes), lambda: golden_run(encode("pcg64x16"))),
    }
    layers = peer_layers(network) if peers else []
    if "SpikingJelly" in peers:
        sj = spikingjelly_runner(peers["SpikingJelly"], layers, B)
        contenders["SpikingJelly"] = (lambda: sj(spikes=spikes), lambda: sj(intensity=intensity, steps=T))
    if "snnTorch" in peers:
        st = snntorch_runner(peers["snnTorch"], layers, B)
        contenders["snnTorch"] = (lambda: st(spikes=spikes), lambda: st(intensity=intensity, steps=T))

    names = list(contenders)
    times = {(name, mode): [] for name in names for mode in (0, 1)}
    predictions = {}
    print(f"{network.layer_sizes} network, T = {T}, batch {B}, {n} images, {args.threads} thread(s), "
          f"{args.rounds} rounds (interleaved)")
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for mode in (0, 1):
            for name in order:
                torch.manual_seed(1000 * r + mode)
                start = time.perf_counter()
                predictions[name, mode] = contenders[name][mode]()
                times[name, mode].append(time.perf_counter() - start)
        print(f"  round {r + 1}/{args.rounds} done", flush=True)

    reference = "SpikingJelly" if "SpikingJelly" in peers else "golden run"
    golden_same = predictions["golden run", 0]
    print(f"\n{'':28s} {'without encoding':>28s}   {'with encoding':>28s}")
    print(f"{'contender':28s} {'median s':>9s} {'× ' + reference[:12]:>15s} {'acc':>6s}   "
          f"{'median s':>9s} {'× ' + reference[:12]:>15s} {'acc':>6s}   same predictions")
    for name in names:
        cells = []
        for mode in (0, 1):
            median = statistics.median(times[name, mode])
            ratio = statistics.median(times[reference, mode]) / median
            accuracy = float((predictions[name, mode] == labels).mean())
            cells.append(f"{median:9.3f} {ratio:14.2f}× {accuracy:6.4f}")
        same = bool(np.array_equal(predictions[name, 0], golden_same))
        print(f"{name:28s} {cells[0]}   {cells[1]}   {'yes' if same else 'no'}")


if __name__ == "__main__":
    main()
