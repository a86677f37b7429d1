"""Training: the ANN trainer and direct SNN training after Lee 2016 (torch-free configuration in lee_config)."""
