"""--amp bf16 on a CPU: our BF16OptimWrapper runs the forward pass under bf16 autocast; an ATSS
--small run trains and validates with MMEngine's Runner, as a Ray worker would."""
from __future__ import annotations

import torch
from conftest import ATSS


def test_atss_small_bf16_trains_and_validates_on_cpu(shapes_dir, tmp_path):
    from mmengine.runner import Runner

    from yolor_ray.train.driver import prepare_run
    from yolor_ray.train.spec import TrainSpec

    run = prepare_run(TrainSpec(config=ATSS, data_root=shapes_dir, small=True, image_size=64, epochs=1,
                                batch_size=4, amp="bf16", storage=str(tmp_path / "results")))
    cfg = run.cfg
    assert cfg.optim_wrapper.type == "BF16OptimWrapper"
    cfg.work_dir = str(tmp_path / "work")
    cfg.default_hooks.checkpoint = None
    cfg.train_dataloader.dataset.indices = 8  # two iterations are enough to see autocast at work
    cfg.visualizer = dict(type="Visualizer", vis_backends=[])
    runner = Runner.from_cfg(cfg)
    seen = {}

    def record(module, inputs, output):
        seen.setdefault("train" if module.training else "val", output.dtype)

    runner.model.backbone.conv1.register_forward_hook(record)
    start = {n: p.detach().clone() for n, p in runner.model.named_parameters()}
    runner.train()  # one epoch, then validation
    assert seen["train"] == torch.bfloat16  # autocast was on while training
    assert seen["val"] == torch.float32  # and validation runs in full precision
    losses = runner.message_hub.get_scalar("train/loss").data[0]
    assert len(losses) > 0 and all(0 < v < 1e3 for v in losses)
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in runner.model.parameters())  # fp32
    assert runner.optim_wrapper.skipped_steps == 0  # P7's conv on a 1x1 map has a right gradient
    assert not torch.equal(start["bbox_head.atss_cls.weight"], runner.model.bbox_head.atss_cls.weight.detach())


def test_strided_conv_on_a_width_1_map_gets_the_fp32_gradient_under_bf16():
    """oneDNN's bf16 weight gradient of a conv strided along a width of 1 is wrong (garbage in
    the padding taps, NaN about every other call); BF16OptimWrapper pads such inputs."""
    from yolor_ray.engine.optim import BF16OptimWrapper

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(32, 32, 3, stride=2, padding=1))
    wrapper = BF16OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    for shape in [(1, 1), (5, 1)] * 5:
        x = torch.randn(2, 32, *shape)
        grads = []
        for bf16 in (False, True):
            model.zero_grad()
            if bf16:
                with wrapper.optim_context(model):
                    y = model(x)
                assert y.dtype == torch.bfloat16
            else:
                y = model(x)
            assert y.shape[-1] == 1  # the output is as wide as without padding
            y.float().sum().backward()
            grads.append(model[0].weight.grad.clone())
        reference, bf16 = grads
        assert torch.isfinite(bf16).all()
        assert (bf16 - reference).abs().max() <= 0.02 * reference.abs().max()
