"""The name rules: placements found from mmdet's attribute names, not from a traced graph.

``rpn`` and ``roi`` are resolved only here, traced or not (:func:`rpn_by_name`,
:func:`roi_by_name`): no graph rule exists for them. ``fpn``, ``pred`` and ``head_in``
come here only when every trace failed (:func:`fallback_sites`); otherwise the graph
rules (:mod:`yolor_ray.implicit.rules`) find them.
"""
from __future__ import annotations

from mmdet.models.necks import FPN
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from torch import nn

from yolor_ray.implicit.errors import PlacementError
from yolor_ray.implicit.sites import Site, channels_of, is_layer, make_site

# The fallback's names: single layers, and lists of them (one per level / decoder layer),
# whose last conv / linear is the prediction layer.
PRED_LAYER_NAMES = ("rpn_cls", "rpn_reg", "atss_cls", "atss_reg", "atss_centerness", "conv_cls", "conv_reg",
                    "conv_centerness", "retina_cls", "retina_reg", "gfl_cls", "gfl_reg", "tood_cls", "tood_reg",
                    "fc_cls", "fc_reg", "conv_logits")
PRED_LIST_NAMES = ("multi_level_conv_cls", "multi_level_conv_reg", "multi_level_conv_obj", "cls_branches",
                   "reg_branches")


def _items(module: nn.Module | None, prefix: str) -> list[tuple[str, nn.Module]]:
    """A head, or every stage of a list of heads (cascades, Sparse R-CNN)."""
    if module is None:
        return []
    if isinstance(module, (nn.ModuleList, list)):
        return [(f"{prefix}.{i}", m) for i, m in enumerate(module)]
    return [(prefix, module)]


def _fpn_by_name(model: nn.Module) -> list[Site]:
    neck = getattr(model, "neck", None)
    if type(neck) is not FPN:  # subclasses (PAFPN, ...) output other layers
        return []
    return [make_site("fpn", f"neck.fpn_convs.{i}", conv, "output") for i, conv in enumerate(neck.fpn_convs)]


def _heads(model: nn.Module) -> list[tuple[str, nn.Module]]:
    heads = _items(getattr(model, "rpn_head", None), "rpn_head") + _items(getattr(model, "bbox_head", None),
                                                                         "bbox_head")
    roi_head = getattr(model, "roi_head", None)
    if roi_head is not None:
        heads += _items(getattr(roi_head, "bbox_head", None), "roi_head.bbox_head")
        heads += _items(getattr(roi_head, "mask_head", None), "roi_head.mask_head")
    return heads


def _pred_by_name(model: nn.Module) -> list[Site]:
    sites = []
    for prefix, head in _heads(model):
        for name in PRED_LAYER_NAMES:
            layer = getattr(head, name, None)
            if isinstance(layer, nn.Module) and channels_of(layer, "output"):
                sites.append(make_site("pred", f"{prefix}.{name}", layer, "output"))
        for name in PRED_LIST_NAMES:
            items = getattr(head, name, None)
            if not isinstance(items, nn.ModuleList):
                continue
            seen = set()
            for i, item in enumerate(items):
                last = [(p, m) for p, m in item.named_modules() if is_layer(m)][-1:] if id(item) not in seen else []
                seen.add(id(item))
                for sub, layer in last:
                    path = f"{prefix}.{name}.{i}" + (f".{sub}" if sub else "")
                    sites.append(make_site("pred", path, layer, "output"))
    return sites


def rpn_by_name(model: nn.Module) -> list[Site]:
    """``rpn``: the output of ``rpn_head.rpn_conv`` (the RPN feature, before its ReLU)."""
    rpn_conv = getattr(getattr(model, "rpn_head", None), "rpn_conv", None)
    if rpn_conv is None:
        return []
    if isinstance(rpn_conv, nn.Sequential):  # num_convs > 1: the last ConvModule gives the same output
        return [make_site("rpn", f"rpn_head.rpn_conv.{len(rpn_conv) - 1}", rpn_conv[-1], "output")]
    return [make_site("rpn", "rpn_head.rpn_conv", rpn_conv, "output")]


def roi_by_name(model: nn.Module) -> list[Site]:
    """``roi``: the output of every RoI extractor (``roi_head.bbox_roi_extractor[.i]``, and
    ``mask_roi_extractor`` when it is a separate one)."""
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


def _head_in_by_name(model: nn.Module) -> list[Site]:
    sites = []
    for prefix, head in _heads(model):
        if prefix.startswith("rpn_head") and getattr(head, "rpn_conv", None) is not None:
            layer = head.rpn_conv if not isinstance(head.rpn_conv, nn.Sequential) else head.rpn_conv[0]
            path = "rpn_head.rpn_conv" + ("" if layer is head.rpn_conv else ".0")
            sites.append(make_site("head_in", path, layer, "input"))
        elif prefix == "bbox_head":  # single-stage dense heads
            for branch in ("cls_convs", "reg_convs"):
                convs = getattr(head, branch, None)
                if convs is not None and len(convs) > 0:
                    sites.append(make_site("head_in", f"{prefix}.{branch}.0", convs[0], "input"))
        elif prefix.startswith("roi_head.bbox_head") and hasattr(head, "instance_interactive_conv"):  # DII
            for branch in ("cls_fcs", "reg_fcs"):
                fcs = getattr(head, branch, None)
                if fcs is not None and len(fcs) > 0:
                    sites.append(make_site("head_in", f"{prefix}.{branch}.0", fcs[0], "input"))
    return sites


def _or_none(resolve, model: nn.Module) -> list[Site]:
    """A fallback rule's sites, or none where the named layer does not say its channels."""
    try:
        return resolve(model)
    except PlacementError:
        return []


def fallback_sites(model: nn.Module) -> dict[str, list[Site]]:
    """``fpn``, ``pred`` and ``head_in`` by name, for a detector that no trace could run."""
    return {name: _or_none(resolve, model) for name, resolve in (
        ("fpn", _fpn_by_name), ("pred", _pred_by_name), ("head_in", _head_in_by_name))}
