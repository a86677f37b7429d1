"""The torch-free golden <-> RTL contract: the integer network and its file format, traces and their comparison, counter names, the cycle model, the ANN MAC count, file safety."""
