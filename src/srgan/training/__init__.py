"""Training: the engine (`engine/`), the recipes that plug into it (`recipes/`), their
data (`data/`), losses and validation on the evaluation protocol."""
