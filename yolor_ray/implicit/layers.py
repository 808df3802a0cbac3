"""Which plain conv / linear layer sits right at the input or output of a module.

Fusion folds constants into such layers, and :class:`ImplicitC` widens them. A layer
is *plain* when its forward is exactly ``torch.nn.Conv2d`` / ``Linear``'s (mmcv's
empty-tensor wrappers included): subclasses that transform their weight first
(mmdet's ``NormedConv2d``, ``NormedLinear``) or deformable convs are not, as scaling
their weight would not scale their output.
"""
from __future__ import annotations

from mmcv.cnn import ConvModule
from mmcv.cnn.bricks import wrappers
from torch import nn

# mmcv's wrappers only add empty-tensor handling to torch's forward.
PLAIN_FORWARDS = {nn.Conv2d.forward, nn.Linear.forward, wrappers.Conv2d.forward, wrappers.Linear.forward}


def is_plain_affine(layer: nn.Module | None) -> bool:
    return isinstance(layer, (nn.Conv2d, nn.Linear)) and type(layer).forward in PLAIN_FORWARDS


def _conv_module_parts(module: nn.Module):
    """(conv, norm?, act?, order) of an mmcv ConvModule, else None."""
    if not isinstance(module, ConvModule):
        return None
    return module.conv, module.with_norm, module.with_activation, module.order, module.with_explicit_padding


def output_layer(module: nn.Module) -> nn.Module | None:
    """The plain layer whose output *is* the module's output, or None."""
    if is_plain_affine(module):
        return module
    parts = _conv_module_parts(module)
    if parts is not None:
        conv, with_norm, with_act, _, _ = parts
        if not with_norm and not with_act and is_plain_affine(conv):
            return conv
    return None


def input_layer(module: nn.Module) -> nn.Module | None:
    """The plain layer that reads the module's input first and only, or None."""
    if is_plain_affine(module):
        return module
    parts = _conv_module_parts(module)
    if parts is not None:
        conv, _, _, order, explicit_padding = parts
        if order[0] == "conv" and not explicit_padding and is_plain_affine(conv):
            return conv
    return None


def layer_path(module_path: str, module: nn.Module, layer: nn.Module) -> str:
    return module_path if layer is module else f"{module_path}.conv"
