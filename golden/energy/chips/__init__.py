"""Shipped chip models (YAML, read by :mod:`golden.energy.estimate`); see docs/energy.md for the schema."""
