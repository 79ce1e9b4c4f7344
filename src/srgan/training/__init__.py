"""Training: datasets, losses, trainer, schedules, checkpoints, logging."""
