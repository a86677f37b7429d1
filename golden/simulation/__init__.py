"""Exact integer (and float) simulation: neurons, encoders, simulators, early decision, operation counts."""
