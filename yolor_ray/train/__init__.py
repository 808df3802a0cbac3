"""Training runs: the driver (checks, then a Ray Train ``TorchTrainer``), the worker
function, and what a run leaves in storage. ``train.spec`` is light (no torch): the CLI
reads it to parse options.

A run's settings go one way down: ``spec`` (each value checked once) -> ``prepare``, the one
entry point for every kind of run -> ``run_config`` (inputs looked up, the config adapted in one
pass with ``config.edits``, the model built) -> ``checks`` -> ``driver`` (Ray Train) -> ``worker``."""
