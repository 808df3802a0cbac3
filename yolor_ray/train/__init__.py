"""Training runs: the driver (checks, then a Ray Train ``TorchTrainer``), the worker
function, and what a run leaves in storage. ``train.spec`` is light (no torch): the CLI
reads it to parse options."""
