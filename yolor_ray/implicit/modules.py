"""Implicit knowledge modules (YOLOR, "You Only Learn One Representation", sections 3-4).

Implicit knowledge is a learned tensor ``z`` that does not depend on the input. It is
combined with a feature map ``x`` by one of three operators:

* :class:`ImplicitA` -- addition, ``x + z`` (z starts near 0: ``N(0, 0.02)``);
* :class:`ImplicitM` -- multiplication, ``x * z`` (z starts near 1: ``N(1, 0.02)``);
* :class:`ImplicitC` -- concatenation, ``[x, z]`` along the channel axis (z starts at
  ``N(0, 0.02)``); it changes the channel count, so it only goes where the next layer
  is built for the extra channels (see :meth:`ImplicitC.bind`).

``z`` holds one value per channel and is modelled in one of three ways (paper 4.2):

* ``vector`` -- ``C`` free values, drawn from ``N(mean, std)``;
* ``nn`` -- a latent ``z`` of size ``D`` through a learned linear map ``W`` (``C x D``):
  ``W z``. ``z`` starts at ones and ``W`` at ``N(mean / D, std / sqrt(D))``, so every
  channel of ``W z`` starts distributed as ``N(mean, std)``;
* ``mf`` -- matrix factorisation ``Z^T c`` of ``K`` atoms (``K x C``) and ``K``
  coefficients. The coefficients start at ``1 / K`` and the atoms at
  ``N(mean, std * sqrt(K))``, so every channel again starts as ``N(mean, std)``.

No parameter is called ``weight`` or ``bias``: MMEngine's ``init_cfg`` initialisers
(``Normal``, ``Xavier``, ...) of the layer an implicit module hangs under look for
those names and would otherwise overwrite the implicit tensor.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from yolor_ray.errors import require_int
from yolor_ray.implicit.errors import ImplicitConfigError

MODELINGS = ("vector", "nn", "mf")
OPERATORS = ("add", "multiply", "concat")
DEFAULT_MEANS = {"add": 0.0, "multiply": 1.0, "concat": 0.0}
DEFAULT_STD = 0.02
DEFAULT_ATOMS = 4
DEFAULT_DIM = 16


def check_modeling(modeling: Any, where: str) -> str:
    if modeling not in MODELINGS:
        raise ImplicitConfigError(f"{where} must be one of {', '.join(MODELINGS)}, got {modeling!r}")
    return modeling


def check_positive_int(value: Any, where: str) -> int:
    require_int(where, value, 1, ImplicitConfigError)
    return value


def check_init(mean: Any, std: Any, where: str) -> tuple[float, float]:
    for name, value in (("mean", mean), ("std", std)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ImplicitConfigError(f"{where}({name}) must be a finite number, got {value!r}")
    if std < 0:
        raise ImplicitConfigError(f"{where}(std) must be >= 0, got {std!r}")
    return float(mean), float(std)


class Implicit(nn.Module):
    """A learned per-channel tensor and the operator that combines it with features.

    Args:
        channels: ``C``, the number of values of the implicit tensor.
        modeling: ``'vector'``, ``'nn'`` or ``'mf'`` (see the module docstring).
        mean, std: the distribution every channel starts from; ``mean=None`` takes the
            operator's default (0 for add and concat, 1 for multiply).
        atoms: ``K`` for ``mf``.
        dim: ``D`` for ``nn``.
        channel_axis: the axis of ``x`` that holds the channels: 1 for ``N, C, H, W``
            feature maps, -1 for the ``..., C`` outputs of linear layers.
    """

    operator: ClassVar[str] = ""
    short: ClassVar[str] = ""

    def __init__(self, channels: int, modeling: str = "vector", mean: float | None = None,
                 std: float = DEFAULT_STD, atoms: int = DEFAULT_ATOMS, dim: int = DEFAULT_DIM,
                 channel_axis: int = 1):
        super().__init__()
        name = type(self).__name__
        self.channels = check_positive_int(channels, f"{name}(channels)")
        self.modeling = check_modeling(modeling, f"{name}(modeling)")
        self.atoms = check_positive_int(atoms, f"{name}(atoms)")
        self.dim = check_positive_int(dim, f"{name}(dim)")
        if mean is None:
            mean = DEFAULT_MEANS[self.operator]
        self.mean, self.std = check_init(mean, std, name)
        if not isinstance(channel_axis, int) or isinstance(channel_axis, bool):
            raise ImplicitConfigError(f"{name}(channel_axis) must be an int, got {channel_axis!r}")
        self.channel_axis = channel_axis
        # Where the module sits, filled in by ``attach``; plain attributes, so they
        # survive copy.deepcopy and pickling with the module.
        self.side = ""
        self.placement = ""
        self.consumer: str | None = None
        self.consumer_flatten = False

        if modeling == "vector":
            self.z = nn.Parameter(torch.empty(channels))
        elif modeling == "nn":
            self.z = nn.Parameter(torch.empty(dim))
            self.w = nn.Parameter(torch.empty(channels, dim))
        else:
            self.atoms_z = nn.Parameter(torch.empty(atoms, channels))
            self.coeffs = nn.Parameter(torch.empty(atoms))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            if self.modeling == "vector":
                self.z.normal_(self.mean, self.std)
            elif self.modeling == "nn":
                self.z.fill_(1.0)
                self.w.normal_(self.mean / self.dim, self.std / math.sqrt(self.dim))
            else:
                self.atoms_z.normal_(self.mean, self.std * math.sqrt(self.atoms))
                self.coeffs.fill_(1.0 / self.atoms)

    def implicit(self) -> Tensor:
        """The implicit tensor: ``C`` values."""
        if self.modeling == "vector":
            return self.z
        if self.modeling == "nn":
            return self.w @ self.z
        return self.coeffs @ self.atoms_z

    def shaped(self, x: Tensor) -> Tensor:
        """The implicit tensor, shaped to broadcast against ``x`` on the channel axis."""
        axis = self.channel_axis % x.dim()
        if x.shape[axis] != self.channels:
            raise ImplicitConfigError(
                f"{type(self).__name__} holds {self.channels} channels but its input has "
                f"{x.shape[axis]} on axis {self.channel_axis} (shape {tuple(x.shape)})")
        shape = [1] * x.dim()
        shape[axis] = self.channels
        return self.implicit().to(x.dtype).view(shape)

    def combine(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x):
        """Combine with a tensor, or with every tensor of a tuple / list (e.g. FPN levels)."""
        if isinstance(x, (tuple, list)):
            return type(x)(self.forward(item) for item in x)
        return self.combine(x)

    # Hook entry points (bound methods: copy.deepcopy rebinds them to the copy).
    def output_hook(self, module: nn.Module, args: tuple, output):
        return self(output)

    def input_hook(self, module: nn.Module, args: tuple):
        return (self(args[0]),) + tuple(args[1:])

    def num_implicit_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def modeling_kwargs(self) -> dict:
        """What rebuilds a module of the same shape (for deploy configs)."""
        kwargs: dict[str, Any] = dict(modeling=self.modeling)
        if self.modeling == "mf":
            kwargs["atoms"] = self.atoms
        if self.modeling == "nn":
            kwargs["dim"] = self.dim
        return kwargs

    def extra_repr(self) -> str:
        extra = {"vector": "", "nn": f", dim={self.dim}", "mf": f", atoms={self.atoms}"}[self.modeling]
        return (f"channels={self.channels}, modeling={self.modeling}{extra}, mean={self.mean}, std={self.std}, "
                f"channel_axis={self.channel_axis}")


class ImplicitA(Implicit):
    """Implicit addition: ``x + z``."""

    operator = "add"
    short = "add"

    def combine(self, x: Tensor) -> Tensor:
        return x + self.shaped(x)


class ImplicitM(Implicit):
    """Implicit multiplication: ``x * z``."""

    operator = "multiply"
    short = "mul"

    def combine(self, x: Tensor) -> Tensor:
        return x * self.shaped(x)


class ImplicitC(Implicit):
    """Implicit concatenation: ``[x, z]``, ``z`` broadcast over every other axis.

    On its own, ``ImplicitC(C)(x)`` returns ``x`` with ``C`` more channels. In a detector
    the layer after it must take the extra channels: :meth:`bind` attaches it to the
    input of an existing ``Conv2d`` / ``Linear`` by giving that layer ``C`` more input
    channels of weight (``w_cat``), kept apart from the layer's own weight so the
    layer's state-dict keys do not change. ``layer([x, z])`` is then computed as
    ``layer(x) + layer_without_bias(z)`` (:meth:`layer_hook`).
    """

    operator = "concat"
    short = "cat"

    def combine(self, x: Tensor) -> Tensor:
        axis = self.channel_axis % x.dim()
        shape = list(x.shape)
        shape[axis] = self.channels
        view = [1] * x.dim()
        view[axis] = self.channels
        return torch.cat([x, self.implicit().to(x.dtype).view(view).expand(shape)], dim=axis)

    def bind(self, layer: nn.Module) -> None:
        """Give ``layer`` (a Conv2d with groups=1 or a Linear) weights for the extra channels."""
        if isinstance(layer, nn.Conv2d):
            if layer.groups != 1 or layer.padding_mode != "zeros":
                raise ImplicitConfigError(
                    f"ImplicitC binds to a Conv2d with groups=1 and zero padding, got groups="
                    f"{layer.groups}, padding_mode={layer.padding_mode!r}")
            shape = (layer.out_channels, self.channels, *layer.kernel_size)
        elif isinstance(layer, nn.Linear):
            shape = (layer.out_features, self.channels)
        else:
            raise ImplicitConfigError(f"ImplicitC binds to a Conv2d or a Linear layer, got {type(layer).__name__}")
        self.w_cat = nn.Parameter(torch.empty(shape))
        # The default init of torch's own Conv2d / Linear weights, for the new columns.
        nn.init.kaiming_uniform_(self.w_cat, a=math.sqrt(5))

    def contribution(self, layer: nn.Module, x: Tensor) -> Tensor:
        """What the extra input channels add to ``layer(x)`` (no bias)."""
        z = self.implicit().to(x.dtype)
        w = self.w_cat.to(x.dtype)
        if isinstance(layer, nn.Linear):
            return F.linear(z, w)
        # The same conv over a constant map of z with x's height and width (batch 1).
        zmap = z.view(1, -1, 1, 1).expand(1, self.channels, *x.shape[-2:])
        return F.conv2d(zmap, w, None, layer.stride, layer.padding, layer.dilation)

    def layer_hook(self, module: nn.Module, args: tuple, output: Tensor) -> Tensor:
        return output + self.contribution(module, args[0])

    def constant_contribution(self, layer: nn.Module) -> Tensor | None:
        """The contribution when it is the same at every position (no padding), else None."""
        with torch.no_grad():
            if isinstance(layer, nn.Linear):
                return F.linear(self.implicit(), self.w_cat)
            if any(p != 0 for p in layer.padding):
                return None
            return self.w_cat.sum(dim=(2, 3)) @ self.implicit()


OPERATOR_CLASSES: dict[str, type[Implicit]] = {"add": ImplicitA, "multiply": ImplicitM, "concat": ImplicitC}


def make_implicit(operator: str, channels: int, **kwargs) -> Implicit:
    """The implicit module for an operator name."""
    if operator not in OPERATOR_CLASSES:
        raise ImplicitConfigError(f"implicit operator must be one of {', '.join(OPERATORS)}, got {operator!r}")
    return OPERATOR_CLASSES[operator](channels, **kwargs)
