"""Energy per chip model (YAML chip models in chips/)."""
