"""Optimizer parts of YOLOR's recipe: no weight decay on implicit tensors, bf16 autocast."""
from __future__ import annotations

import logging
from contextlib import contextmanager

import torch
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper

from yolor_ray.implicit import is_implicit_key


class YOLOROptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """MMEngine's default constructor plus YOLOR's recipe: implicit tensors get no weight
    decay (decay pulls an ImplicitM's z toward 0, not its init 1), unless the model's
    ``implicit.weight_decay`` is True. ``paramwise_cfg.implicit_only=True`` (a warm start's
    ``--train implicit``) freezes every other parameter. Every other rule of
    ``paramwise_cfg`` applies as usual."""

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None):
        paramwise_cfg = dict(paramwise_cfg or {})
        self.implicit_only = bool(paramwise_cfg.pop("implicit_only", False))
        super().__init__(optim_wrapper_cfg, paramwise_cfg or None)

    def __call__(self, model):
        inner = model.module if hasattr(model, "module") else model
        if self.implicit_only:
            for name, param in inner.named_parameters():
                param.requires_grad_(is_implicit_key(name))
        spec = getattr(inner, "implicit_spec", None)
        self._no_decay = set() if spec is None or spec.weight_decay else {
            id(p) for name, p in inner.named_parameters() if is_implicit_key(name)}
        if self._no_decay and not self.paramwise_cfg:
            self.paramwise_cfg = dict(custom_keys={})  # per-parameter groups, all else as without it
        return super().__call__(model)

    def add_params(self, params, module, prefix="", is_dcn_module=None):
        super().add_params(params, module, prefix, is_dcn_module)
        if prefix == "":  # the outermost call: every group is in
            for group in params:
                if any(id(p) in self._no_decay for p in group["params"]):
                    group["weight_decay"] = 0.0


class BF16OptimWrapper(OptimWrapper):
    """bf16 autocast around the forward pass, on GPU or CPU. MMEngine's AmpOptimWrapper
    asserts a GPU; bf16 has fp32's exponent range, so no loss scaling is needed."""

    skipped_steps = 0

    @contextmanager
    def optim_context(self, model):
        device = next(model.parameters()).device.type
        if device == "cpu":
            pad_strided_convs_on_width_1_inputs(model)
            warn_once_if_bf16_is_emulated()
        with super().optim_context(model), torch.autocast(device_type=device, dtype=torch.bfloat16):
            yield

    def step(self, **kwargs) -> None:
        # As AMP's grad scaler does for fp16: a step whose gradients are not finite is
        # skipped, not applied as NaN weights.
        grads = [p.grad for group in self.optimizer.param_groups for p in group["params"] if p.grad is not None]
        if grads and not torch.isfinite(torch.stack([g.detach().float().abs().max() for g in grads])).all():
            self.skipped_steps += 1
            print_log(f"bf16: gradients not finite, step skipped ({self.skipped_steps} so far)", logger="current",
                      level=logging.WARNING)
            self.optimizer.zero_grad()
            return
        super().step(**kwargs)


_bf16_speed_checked = False  # per process: optim_context runs at every step


def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN has fast bf16 kernels here (AVX512 or AMX, torch's own check). On AVX2
    alone it emulates bf16: a small Faster R-CNN's step measured 10.8x slower in bf16 than
    in float32 (docs/training.md)."""
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return True if probe is None else bool(probe())  # unknown: no warning rather than a false one


def warn_once_if_bf16_is_emulated() -> None:
    global _bf16_speed_checked
    if _bf16_speed_checked:
        return
    _bf16_speed_checked = True
    if not cpu_has_fast_bf16():
        print_log(f"bf16 on this CPU ({torch.backends.cpu.get_cpu_capability()}, no AVX512 or AMX) is emulated "
                  "and several times slower than float32 (docs/training.md): train without --amp on CPUs of this kind",
                  logger="current", level=logging.WARNING)


_PADDED = "_yolor_pads_width_1_inputs"


def pad_strided_convs_on_width_1_inputs(model: torch.nn.Module) -> None:
    """Works around a oneDNN bug (torch 2.14 on CPU): under bf16 autocast, a conv strided
    along the width of a feature map 1 pixel wide (FPN's P7 on small images) gets a wrong
    weight gradient: garbage in the taps that see only padding, NaN in about half the steps.
    Such an input gets one more column of zeros, which leaves the output as it was (the
    kernel reads only zeros there, the conv's own padding) and takes oneDNN's correct path."""
    if getattr(model, _PADDED, False):  # once per model, not at every step's optim_context
        return
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d) and module.stride[1] > 1 and isinstance(module.padding, tuple):
            module.register_forward_pre_hook(_pad_width_1_input)
    setattr(model, _PADDED, True)


def _pad_width_1_input(conv: torch.nn.Conv2d, args: tuple):
    x = args[0]
    if x.shape[-1] != 1 or not torch.is_autocast_enabled("cpu") or torch.get_autocast_dtype("cpu") != torch.bfloat16:
        return None
    if _output_width(2, conv) != _output_width(1, conv):  # the kernel would reach the new column
        return None
    return (torch.nn.functional.pad(x, (0, 1)), *args[1:])


def _output_width(width: int, conv: torch.nn.Conv2d) -> int:
    return (width + 2 * conv.padding[1] - conv.dilation[1] * (conv.kernel_size[1] - 1) - 1) // conv.stride[1] + 1
