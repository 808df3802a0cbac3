"""--amp bf16 on a CPU: our BF16OptimWrapper runs the forward pass under bf16 autocast, and
mmcv's ops without a bf16 kernel run in float32 (engine.low_precision); every reference row's YOLOR
config trains and validates (--small) with MMEngine's Runner, as a Ray worker would."""
from __future__ import annotations

import logging

import pytest
import torch

from yolor_ray.reference import REFERENCE_ROWS, yolor_config

from support.runs import worker_like_cfg

# One torch thread: on 2 shared cores a pool of 2 spins against the other processes (conftest's one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")


# ATSS's row (8 s of CPU where bf16 is emulated) stays in the fast tier; the others, up to 45 s each there, are slow.
@pytest.mark.parametrize("row", [row if row == "atss" else pytest.param(row, marks=pytest.mark.slow)
                                 for row in REFERENCE_ROWS])
def test_every_seed_row_trains_and_validates_in_bf16_on_cpu(row, shapes_dir, tmp_path):
    from mmengine.runner import Runner

    from yolor_ray.engine.runner import TextOnceConfig
    from yolor_ray.implicit import is_implicit_key
    from yolor_ray.storage import StorageSpec
    from yolor_ray.train.spec import TrainSpec

    cfg = worker_like_cfg(TrainSpec(config=yolor_config(row), data_root=shapes_dir, small=True, image_size=64,
                                    epochs=1, batch_size=1, amp="bf16",
                                    storage=StorageSpec(str(tmp_path / "results"))),
                          tmp_path / "work")
    assert cfg.optim_wrapper.type == "BF16OptimWrapper"
    # Two iterations of one image: the first finds which mmcv ops need float32, the second takes that
    # path directly. (A bf16 step is about 10x a float32 one on a CPU without AVX512, so the batch
    # is what this test's time is: the reference table's 2 images per GPU took twice as long.)
    cfg.train_dataloader.dataset.indices = 2
    runner = Runner.from_cfg(TextOnceConfig(cfg.to_dict()))  # the config's text formatted once, as workers do
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
    assert runner.optim_wrapper.skipped_steps == 0  # e.g. P7's conv on a 1x1 map has a right gradient
    after = dict(runner.model.named_parameters())
    learned = [n for n, p in start.items() if not torch.equal(p, after[n].detach())]
    assert any(is_implicit_key(n) for n in learned) and any(not is_implicit_key(n) for n in learned)


def test_bf16_on_a_cpu_that_emulates_it_warns_once(monkeypatch):
    from yolor_ray.engine import optim

    logged = []
    monkeypatch.setattr(optim, "print_log", lambda message, **kwargs: logged.append((message, kwargs["level"])))
    model = torch.nn.Linear(4, 4)
    for fast in (True, False):
        probed = []
        monkeypatch.setattr(optim, "_bf16_speed_checked", False)
        monkeypatch.setattr(optim, "cpu_has_fast_bf16", lambda fast=fast: probed.append(fast) or fast)
        wrapper = optim.BF16OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
        for _ in range(3):
            with wrapper.optim_context(model):
                model(torch.randn(2, 4))
        assert probed == [fast]  # once per process, not at every step
        if fast:
            assert logged == []
    assert len(logged) == 1 and "emulated" in logged[0][0] and logged[0][1] == logging.WARNING


def test_the_bf16_probe_agrees_with_the_cpu_flags():
    """torch's own check, against /proc/cpuinfo: oneDNN has fast bf16 kernels from AVX512
    (BW, VL, DQ) on; on AVX2 alone it emulates them."""
    from yolor_ray.engine.optim import cpu_has_fast_bf16

    flags = set(next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split(":")[1].split())
    assert cpu_has_fast_bf16() == ({"avx512bw", "avx512vl", "avx512dq"} <= flags)


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


def test_an_mmcv_op_without_a_low_precision_kernel_runs_in_fp32_and_one_with_it_stays_low(monkeypatch):
    """engine.low_precision's wrapper, on stand-in ops: the first call that the kernel rejects
    for its dtype is redone in float32, with the written buffer cast back; later calls in that
    dtype go straight to float32; an op that takes bf16 keeps it; other errors are not hidden."""
    from yolor_ray.engine import low_precision

    monkeypatch.setattr(low_precision, "fp32_only", set())
    calls = []

    def fp32_kernel(x, out, scale=1.0):  # writes its result into out, as mmcv's ops do
        calls.append(x.dtype)
        if x.dtype != torch.float32:
            raise NotImplementedError(f'"op_cpu" not implemented for \'{low_precision.LOW_DTYPE_NAMES[x.dtype]}\'')
        out.copy_(x * scale)

    def any_kernel(x, out):
        calls.append(x.dtype)
        out.copy_(x + 1)

    def broken(x, out):
        raise RuntimeError("index out of range")

    fp32_only = low_precision._with_fp32_fallback("fp32_only_op", fp32_kernel, written=(1,))
    x = torch.linspace(0, 1, 8, dtype=torch.bfloat16)
    for _ in range(2):
        out = torch.zeros(8, dtype=torch.bfloat16)
        fp32_only(x, out, scale=2.0)
        assert out.dtype == torch.bfloat16 and torch.equal(out, (x.float() * 2).bfloat16())
    assert calls == [torch.bfloat16, torch.float32, torch.float32]  # the bf16 try happens once
    assert ("fp32_only_op", "cpu", torch.bfloat16) in low_precision.fp32_only

    calls.clear()
    out = torch.zeros(8, dtype=torch.bfloat16)
    low_precision._with_fp32_fallback("any_op", any_kernel, written=(1,))(x, out)
    assert calls == [torch.bfloat16] and torch.equal(out, x + 1)

    with pytest.raises(RuntimeError, match="index out of range"):
        low_precision._with_fp32_fallback("broken_op", broken, written=(1,))(x, torch.zeros(8, dtype=torch.bfloat16))


def test_mmcv_roi_align_and_nms_take_bf16_inputs_on_cpu():
    """The real ops of the reference table's R-CNN rows: in bf16 they match their float32 results."""
    from mmcv.ops import nms, roi_align

    import yolor_ray.registrations  # noqa: F401  (installs the fallback)

    torch.manual_seed(0)
    feats = torch.randn(2, 8, 16, 16)
    rois = torch.tensor([[0, 1.0, 1.0, 9.0, 9.0], [1, 4.0, 2.0, 15.0, 12.0]])
    reference = roi_align(feats, rois, (7, 7), 1.0, 2, "avg", True)
    low = roi_align(feats.bfloat16(), rois.bfloat16(), (7, 7), 1.0, 2, "avg", True)
    assert low.dtype == torch.bfloat16
    assert torch.allclose(low.float(), reference, atol=0.05, rtol=0.02)

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = nms(boxes, scores, 0.5)
    _, keep_low = nms(boxes.bfloat16(), scores.bfloat16(), 0.5)
    assert keep.tolist() == keep_low.tolist() == [0, 2]
