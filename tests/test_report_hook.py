"""train/loss is the mean over every rank's iterations, not rank 0's: two real gloo processes."""
from __future__ import annotations

import pytest
import torch.multiprocessing as mp

from support.net import free_port

pytestmark = pytest.mark.subprocess


def _rank(rank: int, port: int, out) -> None:
    import torch.distributed as dist

    from yolor_ray.engine.hooks import EpochReportHook

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        hook = EpochReportHook(reporter=None)
        losses = [[1.0, 3.0], [5.0, 7.0, 9.0]][rank]  # rank 1 ran one iteration more (uneven last batch)
        for value in losses:
            hook.after_train_iter(None, 0, outputs=dict(loss=value, loss_cls=value / 2, acc=100.0))
        out[rank] = hook._mean_losses()
    finally:
        dist.destroy_process_group()


def test_train_loss_is_the_mean_over_ranks():
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_rank, args=(free_port(), out), nprocs=2, join=True)
        means = dict(out)
    expected = {"train/loss": 5.0, "train/loss_cls": 2.5}  # (1+3+5+7+9)/5; rank 0 alone would say 2.0
    assert means[0] == expected and means[1] == expected
