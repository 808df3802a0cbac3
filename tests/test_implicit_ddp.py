"""Under DDP (2 gloo processes, MMEngine's wrapper as Ray Train workers use it), implicit
parameters start equal and stay identical across ranks while each rank sees other data."""
from __future__ import annotations

import os

import pytest
import torch
import torch.multiprocessing as mp

from support.net import free_port

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.subprocess]

WORLD_SIZE = 2
STEPS = 2


def _worker(rank: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist
    from mmengine.optim import OptimWrapper

    from yolor_ray.engine.ddp import CPUFriendlyDDP
    from yolor_ray.implicit import is_implicit_key

    from support.implicit import build, raw_batch, small_cfg

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE)
    try:
        model = build(small_cfg("atss", dict(placements=["fpn", "pred", dict(name="head_in", operators="concat")])),
                      seed=rank)  # different init per rank: DDP must broadcast rank 0's
        ddp = CPUFriendlyDDP(module=model)
        optim_wrapper = OptimWrapper(torch.optim.SGD(ddp.parameters(), lr=0.01))
        start = {n: p.detach().clone() for n, p in model.named_parameters() if is_implicit_key(n)}
        for step in range(STEPS):
            ddp.train_step(raw_batch(size=64, num_images=1, seed=10 * step + rank), optim_wrapper)
        torch.save(dict(start=start, end={n: p.detach() for n, p in model.named_parameters() if is_implicit_key(n)}),
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_implicit_parameters_stay_identical_across_ranks(tmp_path):
    mp.spawn(_worker, args=(free_port(), str(tmp_path)), nprocs=WORLD_SIZE, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD_SIZE)]
    reference = ranks[0]["end"]
    assert len(reference) == 5 + 3 + 2 * 2  # fpn levels, ATSS predictions, head_in concat (z + w_cat) x 2
    for name, value in reference.items():
        assert all(torch.equal(r["start"][name], ranks[0]["start"][name]) for r in ranks), name  # broadcast
        assert all(torch.equal(value, r["end"][name]) for r in ranks), name  # same gradients applied
        assert not torch.equal(value, ranks[0]["start"][name]), name  # and they did train
