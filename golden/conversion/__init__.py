"""ANN -> integer SNN conversion: ANN import, normalisation, Spike-Norm, residual rules, quantisation, weighted-spike
and FS conversion. Torch-free at this level: :data:`DEFAULT_NEURON` is the neuron every conversion route and the
command line's ``--reset`` default to."""

from golden.core.network import NeuronParams

# IF with reset by subtraction (Diehl 2015 / Rueckauer 2017 practice: the excess over θ carries over): the default
# of golden.conversion.convert.convert, .residual.convert_residual, .spikenorm.spike_norm_convert and of the CLI
DEFAULT_NEURON = NeuronParams("if", "subtract")
