"""ANN -> integer SNN conversion: ANN import, normalisation, Spike-Norm, residual rules, quantisation, weighted-spike and FS conversion."""
