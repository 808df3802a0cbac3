"""mmcv ops without a kernel for the autocast dtype run in float32; the rest stays low.

mmcv 2.1's compiled ops pick their kernel by the input's dtype, and several that the reference table's
detectors reach have none for bf16 (roi_align and sigmoid_focal_loss on CUDA; nms and
roi_align on CPU): under autocast their inputs arrive in bf16 and the op raises. Autocast
never sees these ops (they are pybind functions, not torch operators), so no autocast policy
can cast them. We wrap them where mmcv's own Python code calls them, the functions of
``mmcv._ext``: a call that the kernel rejects for its dtype is redone in float32 (inputs
cast up; the buffers the op writes, which mmcv allocated in the low dtype, get the results
cast back) and later calls in that dtype and device go straight to float32. An op that has
the kernel keeps running in low precision.
"""
from __future__ import annotations

import functools
import logging
from typing import Callable

import torch
from mmengine.logging import print_log

LOW_DTYPE_NAMES = {torch.bfloat16: "BFloat16", torch.float16: "Half"}

# The mmcv ops the six reference rows call, and the positions of the tensor arguments each one
# writes its results into (mmcv passes tensors positionally, scalars by keyword).
WRITTEN_ARGS: dict[str, tuple[int, ...]] = {
    "nms": (),
    "roi_align_forward": (2, 3, 4),
    "roi_align_backward": (4,),
    "sigmoid_focal_loss_forward": (3,),
    "sigmoid_focal_loss_backward": (3,),
    "softmax_focal_loss_forward": (3,),
    "softmax_focal_loss_backward": (3, 4),
}

_WRAPPED = "_yolor_fp32_fallback"
# (op, device type, dtype) whose kernel is missing: found at the first call, kept per process
fp32_only: set[tuple[str, str, torch.dtype]] = set()


def install_fp32_fallback() -> list[str]:
    """Wrap the ops of :data:`WRITTEN_ARGS` in ``mmcv._ext`` (once per process; an op a build
    lacks is left alone). Returns the names wrapped now."""
    from mmcv.utils import ext_loader

    ext = ext_loader.load_ext("_ext", [])
    wrapped = []
    for name, written in WRITTEN_ARGS.items():
        op = getattr(ext, name, None)
        if op is None or getattr(op, _WRAPPED, False):
            continue
        setattr(ext, name, _with_fp32_fallback(name, op, written))
        wrapped.append(name)
    return wrapped


def _with_fp32_fallback(name: str, op: Callable, written: tuple[int, ...]) -> Callable:
    @functools.wraps(op)
    def call(*args, **kwargs):
        low = _low_dtype_tensor(args, kwargs)
        if low is None:
            return op(*args, **kwargs)
        key = (name, low.device.type, low.dtype)
        if key not in fp32_only:
            try:
                return op(*args, **kwargs)
            except (NotImplementedError, RuntimeError) as error:
                if LOW_DTYPE_NAMES[low.dtype] not in str(error):
                    raise
                fp32_only.add(key)
                print_log(f"mmcv's {name} has no {LOW_DTYPE_NAMES[low.dtype]} kernel on {low.device.type}: "
                          "it runs in float32 there", logger="current", level=logging.INFO)
        return _call_in_fp32(op, args, kwargs, written)

    setattr(call, _WRAPPED, True)
    return call


def _low_dtype_tensor(args: tuple, kwargs: dict) -> torch.Tensor | None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor) and value.dtype in LOW_DTYPE_NAMES:
            return value
    return None


def _call_in_fp32(op: Callable, args: tuple, kwargs: dict, written: tuple[int, ...]):
    up = [_to_fp32(a) for a in args]
    result = op(*up, **{k: _to_fp32(v) for k, v in kwargs.items()})
    for i in written:
        if up[i] is not args[i]:
            args[i].copy_(up[i])  # into mmcv's low-precision buffer, as the caller expects
    return result


def _to_fp32(value):
    if isinstance(value, torch.Tensor) and value.dtype in LOW_DTYPE_NAMES:
        return value.float()
    return value
