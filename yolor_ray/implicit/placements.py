"""The placement vocabulary, resolved on a *built* detector to module paths ("sites").

Resolution looks at the detector's parts (``neck``, ``rpn_head``, ``bbox_head``,
``roi_head``) and their real mmdet attribute names, so it covers the five families of
the seed and any detector assembled from the same parts:

``fpn``     output of every ``neck.fpn_convs[i]`` of an ``FPN`` neck: every output level
            (levels made by max-pooling the last one see its z, extra conv levels get
            their own). Default ``add`` (the paper's iFA).
``pred``    outputs of the final prediction layers of every head: ``rpn_head.rpn_cls /
            rpn_reg``; single-stage ``bbox_head.{atss,conv,retina}_{cls,reg,centerness}``;
            ``roi_head.bbox_head[.i].fc_cls / fc_reg`` (every stage of a cascade such as
            Sparse R-CNN's six DII heads); ``roi_head.mask_head[.i].conv_logits``.
            Default ``multiply`` (the paper's iPR).
``rpn``     output of ``rpn_head.rpn_conv`` (the RPN feature, before its ReLU).
``roi``     output of every RoI extractor (``roi_head.bbox_roi_extractor[.i]``, and
            ``mask_roi_extractor`` when it is a separate one).
``head_in`` input of the first layer of every dense head branch: ``bbox_head.cls_convs[0]``
            and ``reg_convs[0]`` (ATSS, FCOS), ``rpn_head.rpn_conv`` (RPN of two-stage
            detectors), ``roi_head.bbox_head[i].cls_fcs[0] / reg_fcs[0]`` (the
            classification and regression branches of each DII stage of Sparse R-CNN).

Escape hatch: ``dict(path='module.path', side='input'|'output', operators=[...])``.
"""
from __future__ import annotations

from dataclasses import dataclass

from mmdet.models.necks import FPN
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from torch import nn

from yolor_ray.implicit.errors import PlacementError  # noqa: F401  (raised here; importable from here)
from yolor_ray.implicit.spec import PlacementSpec

PRED_LAYER_NAMES = ("rpn_cls", "rpn_reg", "atss_cls", "atss_reg", "atss_centerness", "conv_cls", "conv_reg",
                    "conv_centerness", "retina_cls", "retina_reg", "fc_cls", "fc_reg", "conv_logits")


@dataclass(frozen=True)
class Site:
    """One module of a built detector that implicit tensors act on.

    ``consumer``: for an output whose module cannot absorb a constant (an RoI extractor),
    the one layer that reads it, so fusion can fold into that layer's input instead;
    ``consumer_flatten``: the consumer reads the output flattened to ``(N, C*H*W)``.
    """

    placement: str
    path: str
    side: str
    channels: int
    channel_axis: int
    consumer: str | None = None
    consumer_flatten: bool = False


def get_module(model: nn.Module, path: str) -> nn.Module:
    try:
        return model.get_submodule(path)
    except AttributeError:
        parent, _, last = path.rpartition(".")
        try:
            children = [n for n, _ in (model.get_submodule(parent) if parent else model).named_children()]
        except AttributeError:
            children = []
        hint = f"; children of {parent or 'the model'}: {', '.join(children)}" if children else ""
        raise PlacementError(f"implicit placement path {path!r} is not a module of {type(model).__name__}"
                             f"{hint}") from None


def _items(module: nn.Module | None, prefix: str) -> list[tuple[str, nn.Module]]:
    """A head, or every stage of a list of heads (cascades, Sparse R-CNN)."""
    if module is None:
        return []
    if isinstance(module, (nn.ModuleList, list)):
        return [(f"{prefix}.{i}", m) for i, m in enumerate(module)]
    return [(prefix, module)]


def channels_of(module: nn.Module, side: str) -> int | None:
    """Channel count at one side of a layer, when the layer says."""
    names = ("in_channels", "in_features") if side == "input" else ("out_channels", "out_features")
    for inner in (module, getattr(module, "conv", None)):
        for name in names:
            value = getattr(inner, name, None) if inner is not None else None
            if isinstance(value, int):
                return value
    return None


def channel_axis_of(module: nn.Module) -> int:
    return -1 if isinstance(module, (nn.Linear, nn.LayerNorm)) else 1


def _site(placement: str, path: str, module: nn.Module, side: str, **kwargs) -> Site:
    channels = channels_of(module, side)
    if channels is None:
        raise PlacementError(f"placement {placement!r}: cannot tell the channels of {path} ({type(module).__name__})")
    return Site(placement, path, side, channels, channel_axis_of(module), **kwargs)


def _fpn(model: nn.Module) -> list[Site]:
    neck = getattr(model, "neck", None)
    if type(neck) is not FPN:  # subclasses (PAFPN, ...) output other layers
        return []
    return [_site("fpn", f"neck.fpn_convs.{i}", conv, "output") for i, conv in enumerate(neck.fpn_convs)]


def _heads(model: nn.Module) -> list[tuple[str, nn.Module]]:
    heads = _items(getattr(model, "rpn_head", None), "rpn_head") + _items(getattr(model, "bbox_head", None),
                                                                         "bbox_head")
    roi_head = getattr(model, "roi_head", None)
    if roi_head is not None:
        heads += _items(getattr(roi_head, "bbox_head", None), "roi_head.bbox_head")
        heads += _items(getattr(roi_head, "mask_head", None), "roi_head.mask_head")
    return heads


def _pred(model: nn.Module) -> list[Site]:
    sites = []
    for prefix, head in _heads(model):
        for name in PRED_LAYER_NAMES:
            layer = getattr(head, name, None)
            if isinstance(layer, nn.Module) and channels_of(layer, "output"):
                sites.append(_site("pred", f"{prefix}.{name}", layer, "output"))
    return sites


def _rpn(model: nn.Module) -> list[Site]:
    rpn_conv = getattr(getattr(model, "rpn_head", None), "rpn_conv", None)
    if rpn_conv is None:
        return []
    if isinstance(rpn_conv, nn.Sequential):  # num_convs > 1: the last ConvModule gives the same output
        return [_site("rpn", f"rpn_head.rpn_conv.{len(rpn_conv) - 1}", rpn_conv[-1], "output")]
    return [_site("rpn", "rpn_head.rpn_conv", rpn_conv, "output")]


def _roi(model: nn.Module) -> list[Site]:
    roi_head = getattr(model, "roi_head", None)
    if roi_head is None:
        return []
    sites = []
    extractors = _items(getattr(roi_head, "bbox_roi_extractor", None), "roi_head.bbox_roi_extractor")
    shared = getattr(roi_head, "with_mask", False) and getattr(roi_head, "share_roi_extractor", False)
    if not shared:
        extractors += _items(getattr(roi_head, "mask_roi_extractor", None), "roi_head.mask_roi_extractor")
    for path, extractor in extractors:
        consumer, flatten = _roi_consumer(roi_head, path)
        sites.append(Site("roi", path, "output", extractor.out_channels, 1, consumer, flatten))
    return sites


def _roi_consumer(roi_head: nn.Module, extractor_path: str) -> tuple[str | None, bool]:
    """The only layer that reads an RoI extractor's output, when it is that simple."""
    if type(roi_head) is not StandardRoIHead or roi_head.with_shared_head:
        return None, False
    if extractor_path.endswith("bbox_roi_extractor"):
        head = roi_head.bbox_head
        if isinstance(head, ConvFCBBoxHead):
            if head.num_shared_convs > 0:
                return "roi_head.bbox_head.shared_convs.0", False
            if head.num_shared_fcs > 0 and not head.with_avg_pool:
                return "roi_head.bbox_head.shared_fcs.0", True
        return None, False
    head = roi_head.mask_head
    if type(head) is FCNMaskHead and head.num_convs > 0:
        return "roi_head.mask_head.convs.0", False
    return None, False


def _head_in(model: nn.Module) -> list[Site]:
    sites = []
    for prefix, head in _heads(model):
        if prefix.startswith("rpn_head") and getattr(head, "rpn_conv", None) is not None:
            layer = head.rpn_conv if not isinstance(head.rpn_conv, nn.Sequential) else head.rpn_conv[0]
            path = "rpn_head.rpn_conv" + ("" if layer is head.rpn_conv else ".0")
            sites.append(_site("head_in", path, layer, "input"))
        elif prefix == "bbox_head":  # single-stage dense heads
            for branch in ("cls_convs", "reg_convs"):
                convs = getattr(head, branch, None)
                if convs is not None and len(convs) > 0:
                    sites.append(_site("head_in", f"{prefix}.{branch}.0", convs[0], "input"))
        elif prefix.startswith("roi_head.bbox_head") and hasattr(head, "instance_interactive_conv"):  # DII
            for branch in ("cls_fcs", "reg_fcs"):
                fcs = getattr(head, branch, None)
                if fcs is not None and len(fcs) > 0:
                    sites.append(_site("head_in", f"{prefix}.{branch}.0", fcs[0], "input"))
    return sites


RESOLVERS = {"fpn": _fpn, "pred": _pred, "rpn": _rpn, "roi": _roi, "head_in": _head_in}  # keys: PLACEMENTS


def available_placements(model: nn.Module) -> list[str]:
    """The vocabulary names that exist on this detector."""
    return [name for name, resolve in RESOLVERS.items() if resolve(model)]


def resolve_placement(model: nn.Module, placement: PlacementSpec) -> list[Site]:
    """The sites one placement entry acts on; raises PlacementError naming valid ones."""
    if placement.name is not None:
        sites = RESOLVERS[placement.name](model)
        if not sites:
            valid = available_placements(model)
            raise PlacementError(f"implicit placement {placement.name!r} does not exist on {type(model).__name__}; "
                                 f"valid placements for {type(model).__name__}: {', '.join(valid)} "
                                 f"(or dict(path=..., side=...) for any module)")
        return sites
    module = get_module(model, placement.path)
    if isinstance(module, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
        raise PlacementError(f"implicit placement {placement.label!r}: {placement.path} is a "
                             f"{type(module).__name__}; name one of its layers instead")
    channels = placement.channels or channels_of(module, placement.side)
    if channels is None:
        raise PlacementError(f"cannot tell the {placement.side} channels of {placement.path} "
                             f"({type(module).__name__}); give channels=... in its placement dict")
    axis = placement.channel_axis if placement.channel_axis is not None else channel_axis_of(module)
    return [Site("path", placement.path, placement.side, channels, axis)]
