"""Shipped chip models (YAML, read by :mod:`golden.energy`); see docs/energy.md for the schema."""
