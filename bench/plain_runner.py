"""The plain side of bench.ray_overhead: what ``yolor-ray train ARGS`` would train,
with MMEngine's own Runner in this one process (no Ray, no DDP wrapper).

    python -m bench.plain_runner train CONFIG --data DIR --small ...   (yolor-ray train's arguments)

The config comes from the same code as under Ray (``prepare_run``), so model, data,
schedule, seed and thread count are the same; only the launcher differs.
"""
from __future__ import annotations

import shutil
import sys
import tempfile


def main(argv: list[str]) -> int:
    import torch
    from mmengine.runner import Runner

    from yolor_ray.cli.train import spec_from_argv
    from yolor_ray.train.prepare import prepare_run

    command, *train_argv = argv
    if command != "train":
        raise SystemExit("usage: python -m bench.plain_runner train CONFIG ... (yolor-ray train's arguments)")
    spec = spec_from_argv(train_argv)
    cfg = prepare_run(spec).cfg
    torch.set_num_threads(spec.scaling.cpus_per_worker)  # as train_worker does under Ray
    cfg.work_dir = tempfile.mkdtemp(prefix="bench-plain-")
    cfg.launcher = "none"
    cfg.default_hooks.checkpoint = None  # under Ray, checkpoints go through the report hook, after the epoch
    try:
        Runner.from_cfg(cfg).train()
    finally:
        shutil.rmtree(cfg.work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
