"""The training engine: one loop for every recipe (`loop.Engine`), with its pieces:
data order and resume position (`data_order`), one optimizer step with accumulation,
AMP, DDP, clipping and EMA (`stepper`), schedules, checkpoints, the run folder's logs
and status files, signals, autotune and torchrun support."""
