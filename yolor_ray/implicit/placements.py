"""The placement vocabulary, resolved on a *built* detector to module paths ("sites").

Resolution is structural: :func:`trace_structure` runs the detector once on a small
synthetic batch (its loss, else its ``tensor`` mode; batch-norm statistics, training
flags and random state are restored afterwards) and reads the autograd graph to find
which modules produce the neck's outputs and which layers feed the loss. The rules,
with the families they were checked on (docs/implicit.md has the full table):

``fpn``     every output level of the neck, whatever its class: the module that produces
            each level (walking back through parameter-free ops such as FPN's max-pooled
            P6, which so sees P5's ``z``): ``fpn_convs`` of FPN (Faster / Mask R-CNN,
            RetinaNet, FCOS, ATSS, GFL, TOOD ...), ``fpn_convs.0`` + ``pafpn_convs`` of
            PAFPN, ``out_convs`` of YOLOX / RTMDet necks, ``convs`` + ``extra_convs`` of
            ChannelMapper (DETR family). Without a neck: the backbone's output levels
            (CornerNet, TridentNet). Default ``add`` (the paper's iFA).
``pred``    the final prediction layers of every head: walking back from every loss term,
            the first conv / linear layer met on each path (through losses, ``Scale``,
            activations, sigmoid, box decoding) that lies inside a head -- the last
            layer of each classification / regression / centerness / objectness / mask
            branch: dense heads per level or shared (RetinaNet, ATSS, GFL ``gfl_cls /
            gfl_reg``, TOOD, YOLOX ``multi_level_conv_{cls,reg,obj}``), RPN, RoI heads
            of every stage (Cascade, Sparse R-CNN), mask heads, query heads (DETR
            family: ``cls_branches.i`` and the last linear of ``reg_branches.i``, every
            decoder layer and DINO's encoder proposals). Default ``multiply`` (iPR).
``rpn``     output of ``rpn_head.rpn_conv`` (the RPN feature, before its ReLU).
``roi``     output of every RoI extractor (``roi_head.bbox_roi_extractor[.i]``, and
            ``mask_roi_extractor`` when it is a separate one).
``head_in`` dense heads (``BaseDenseHead``): the input of the first layer on every path
            from the head's input to its prediction layers (the first conv of each
            tower: ``cls_convs.0`` / ``reg_convs.0``; RPN's ``rpn_conv``; YOLOX's
            per-level towers). RoI and query heads: the input of the first layer of each
            branch that splits off the shared trunk before its prediction layer
            (Sparse R-CNN's ``cls_fcs.0`` / ``reg_fcs.0``, the DETR family's
            ``reg_branches.i.0``); a head whose prediction layers read the trunk
            directly (Faster R-CNN's ``fc_cls`` / ``fc_reg``) or that has one
            prediction (a mask head) has none.

A layer shared by several levels or decoder layers (one module object, e.g.
``share_pred_layer``) is one site. Heads are the detector's children whose class
name ends in ``Head`` (or whose attribute name says ``head``); within them a head
unit is the innermost ``...Head`` module (one RoI stage, one mask head).

When the trace fails (a detector whose loss and tensor mode cannot run on a synthetic
batch), resolution falls back to names: ``neck.fpn_convs`` of an ``FPN`` neck and the
prediction layer names of :data:`PRED_LAYER_NAMES`; :func:`resolution_of` says which
way a model was resolved and why.

Escape hatch: ``dict(path='module.path', side='input'|'output', operators=[...])``.
"""
from __future__ import annotations

import copy
import random
import weakref
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from mmcv.cnn import ConvModule
from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
from mmdet.models.necks import FPN
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.logging import MessageHub, MMLogger
from mmengine.structures import InstanceData, PixelData
from torch import nn

from yolor_ray.implicit.errors import PlacementError  # noqa: F401  (raised here; importable from here)
from yolor_ray.implicit.layers import input_layer, output_layer
from yolor_ray.implicit.modules import Implicit
from yolor_ray.implicit.spec import PlacementSpec

# The fallback's names: single layers, and lists of them (one per level / decoder layer),
# whose last conv / linear is the prediction layer.
PRED_LAYER_NAMES = ("rpn_cls", "rpn_reg", "atss_cls", "atss_reg", "atss_centerness", "conv_cls", "conv_reg",
                    "conv_centerness", "retina_cls", "retina_reg", "gfl_cls", "gfl_reg", "tood_cls", "tood_reg",
                    "fc_cls", "fc_reg", "conv_logits")
PRED_LIST_NAMES = ("multi_level_conv_cls", "multi_level_conv_reg", "multi_level_conv_obj", "cls_branches",
                   "reg_branches")


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


# ---------------------------------------------------------------- structural resolution

TRACE_SIZES = (64, 224, 320)  # synthetic image sizes tried in turn (DINO: 900 queries; DDOD: DCN on P7)
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass(frozen=True)
class Resolution:
    """How the vocabulary was resolved on one model: ``method`` is ``'loss'`` or
    ``'tensor'`` (the traced mode) or ``'names'`` (the fallback); ``error``: why the
    attempts before it failed."""

    method: str
    sites: dict
    error: str | None = None


_RESOLUTIONS: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple, Resolution]]" = weakref.WeakKeyDictionary()


def is_layer(module: nn.Module) -> bool:
    """A conv / linear-like layer: its own ``weight`` and an input channel count."""
    return module._parameters.get("weight") is not None and any(
        isinstance(getattr(module, name, None), int) for name in ("in_channels", "in_features"))


def _is_implicit(module: nn.Module) -> bool:
    return isinstance(module, Implicit)


def tensors_in(value, out: list | None = None) -> list:
    """Every tensor in ``value`` (nested lists, tuples, dicts, mmengine data elements), in order."""
    out = [] if out is None else out
    if isinstance(value, torch.Tensor):
        out.append(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            tensors_in(item, out)
    elif isinstance(value, dict):
        for item in value.values():
            tensors_in(item, out)
    elif hasattr(value, "keys") and hasattr(value, "get"):  # InstanceData and friends
        for key in value.keys():
            tensors_in(value.get(key), out)
    return out


def _nodes(value) -> list:
    return [t.grad_fn for t in tensors_in(value) if t.grad_fn is not None]


def synthetic_batch(size: int, num_images: int = 2, masks: bool = True) -> dict:
    """Images and annotations as a dataloader gives them (boxes, masks, a semantic map, proposals)."""
    gen = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for index in range(num_images):
        inputs.append((torch.rand(3, size, size, generator=gen) * 255).to(torch.uint8))
        # a large, a medium and a small box, so that every level of a multi-level head gets positives
        boxes = torch.tensor([[4.0, 6.0, size * 0.6, size * 0.7], [size * 0.3, size * 0.2, size - 3.0, size - 5.0],
                              [size * 0.7, size * 0.05, size * 0.95, size * 0.3],
                              [size * 0.1, size * 0.8, size * 0.2, size * 0.9]])
        bitmap = np.zeros((len(boxes), size, size), dtype=np.uint8)
        for i, (x1, y1, x2, y2) in enumerate(boxes.int().tolist()):
            bitmap[i, y1:y2, x1:x2] = 1
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size), scale_factor=(1.0, 1.0),
                                             img_id=index, img_path=f"synthetic_{index}.jpg", flip=False,
                                             flip_direction=None))
        sample.gt_instances = InstanceData(bboxes=boxes, labels=torch.zeros(len(boxes), dtype=torch.long))
        if masks:
            sample.gt_instances.masks = BitmapMasks(bitmap, size, size)
        sample.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
        sample.gt_sem_seg = PixelData(sem_seg=torch.zeros(1, size, size, dtype=torch.uint8))
        sample.proposals = InstanceData(bboxes=torch.cat([boxes, boxes + 2.0]), scores=torch.linspace(0.9, 0.2, 8))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


_MODULE_DICTS = {"_parameters", "_buffers", "_modules"}
_MISSING = object()


@contextmanager
def _restoring(model: nn.Module):
    """Training flags, buffers (batch-norm statistics), random state and batch
    augmentations of ``model`` come back as they were."""
    flags = [(m, m.training) for m in model.modules()]
    # plain attributes too: some heads keep tensors of their last forward (CondInst), which
    # would tie the model to the trace's graph (and make it fail to deepcopy)
    attributes = [(m, {k: (v, copy.copy(v) if type(v) in (dict, list) else None) for k, v in m.__dict__.items()
                       if k not in _MODULE_DICTS}) for m in model.modules()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    preprocessor = getattr(model, "data_preprocessor", None)
    augments = getattr(preprocessor, "batch_augments", None)
    py_state, np_state = random.getstate(), np.random.get_state()
    hub = MessageHub.get_current_instance()
    missing = [key for key in ("epoch", "iter") if hub.get_info(key) is None]
    try:
        for key in missing:  # what a Runner provides (TOOD reads the epoch)
            hub.update_info(key, 0)
        with torch.random.fork_rng(devices=[]):
            if augments is not None:
                preprocessor.batch_augments = None
            yield
    finally:
        if augments is not None:
            preprocessor.batch_augments = augments
        with torch.no_grad():
            for buffer, value in buffers:
                buffer.copy_(value)
        for module, before in attributes:
            for key in [k for k in module.__dict__ if k not in _MODULE_DICTS and k not in before]:
                del module.__dict__[key]
            for key, (value, contents) in before.items():
                if module.__dict__.get(key, _MISSING) is not value:
                    module.__dict__[key] = value
                if contents is not None:  # a dict / list filled in place (CondInst's positive infos)
                    value.clear()
                    value.extend(contents) if isinstance(value, list) else value.update(contents)
        for module, flag in flags:
            module.training = flag
        random.setstate(py_state)
        np.random.set_state(np_state)
        for key in missing:
            hub.runtime_info.pop(key, None)


class _Trace:
    """What one traced call of the detector left: per autograd node, the modules whose
    output it is (innermost first); per module, the nodes of its inputs; the neck's
    (or backbone's) output levels; the nodes the traced mode returned."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.modules = dict(model.named_modules())
        self.order = {path: i for i, path in enumerate(self.modules)}
        self.outputs: dict = {}
        self.inputs: dict[str, list] = {}
        self.levels: list = []
        self.level_root = "neck" if isinstance(getattr(model, "neck", None), nn.Module) else (
            "backbone" if isinstance(getattr(model, "backbone", None), nn.Module) else None)
        self.ends: list = []
        self.internal: dict = {}
        self.shapes: dict = {}
        self._pending: dict[str, list] = {}

    def run(self, mode: str, size: int) -> None:
        handles = []
        try:
            for path, module in self.modules.items():
                if not path or _is_implicit(module):
                    continue
                handles.append(module.register_forward_pre_hook(self._pre_hook(path)))
                handles.append(module.register_forward_hook(self._hook(path)))
            with torch.enable_grad():
                data = self.model.data_preprocessor(synthetic_batch(size), training=mode == "loss")
                if mode == "loss":
                    self.model.train()
                    result = self.model.loss(data["inputs"], data["data_samples"])
                else:
                    self.model.eval()
                    result = self.model(data["inputs"], data["data_samples"], mode="tensor")
        finally:
            for handle in handles:
                handle.remove()
        self.ends = _nodes(result)
        if not self.ends:
            raise RuntimeError(f"the {mode} mode of {type(self.model).__name__} returned no tensor with a gradient")

    def _pre_hook(self, path):
        def hook(module, args):
            nodes = _nodes(args)
            self.inputs.setdefault(path, []).extend(nodes)
            self._pending.setdefault(path, []).append(nodes)
        return hook

    def _hook(self, path):
        def hook(module, args, output):
            inputs = self._pending[path].pop() if self._pending.get(path) else []
            tensors = [t for t in tensors_in(output) if t.grad_fn is not None]
            nodes = [t.grad_fn for t in tensors]
            for tensor, node in zip(tensors, nodes):
                self.outputs.setdefault(node, []).append(path)
                self.shapes.setdefault(node, tuple(tensor.shape))
            if is_layer(module):
                self._mark_internal(path, nodes, set(inputs))
            if path == self.level_root and not self.levels:
                self.levels = nodes
        return hook

    def _mark_internal(self, path: str, outputs: list, inputs: set, limit: int = 16) -> None:
        """The nodes a layer's own forward made (e.g. a linear's matmul under its view):
        an in-place op on the output (``x[..., :2] += ref``) reroutes the graph around the
        output node, through these."""
        stack, seen = list(outputs), set()
        while stack and len(seen) < limit:
            node = stack.pop()
            if node is None or node in seen or node in inputs or type(node).__name__ == "AccumulateGrad":
                continue
            seen.add(node)
            self.internal.setdefault(node, path)
            stack.extend(fn for fn, _ in node.next_functions)

    # -- walking the graph backwards
    @staticmethod
    def walk(starts, stop) -> list:
        """Nodes behind ``starts``; ``stop(node)`` returns a result (kept, not walked
        past), ``False`` (not walked past) or None (walk on)."""
        seen, stack, found = set(), list(starts), []
        while stack:
            node = stack.pop()
            if node is None or node in seen:
                continue
            seen.add(node)
            result = stop(node)
            if result is None:
                stack.extend(fn for fn, _ in node.next_functions)
            elif result is not False:
                found.append(result)
        return found

    def producer(self, node) -> str | None:
        """The innermost module whose output ``node`` is (or, for a layer, made inside it)."""
        paths = self.outputs.get(node)
        return paths[0] if paths else self.internal.get(node)


def _inside(path: str, root: str) -> bool:
    return bool(root) and path.startswith(root + ".")


def head_roots(model: nn.Module) -> list[str]:
    roots = []
    for name, child in model.named_children():
        if name in ("backbone", "neck", "data_preprocessor"):
            continue
        if type(child).__name__.endswith("Head") or "head" in name:
            roots.append(name)
    return roots


def _head_unit(trace: _Trace, path: str, roots: list[str]) -> str | None:
    """The innermost ``...Head`` module holding ``path`` (one RoI stage, one mask head)."""
    root = next((r for r in roots if _inside(path, r)), None)
    if root is None:
        return None
    unit, parts = root, path.split(".")
    for i in range(len(root.split(".")) + 1, len(parts)):
        candidate = ".".join(parts[:i])
        module = trace.modules.get(candidate)
        if module is not None and not isinstance(module, CONTAINERS) and type(module).__name__.endswith("Head"):
            unit = candidate
    return unit


def _climb(trace: _Trace, path: str, unit: str, side: str) -> str:
    """The outermost wrapper of layer ``path`` (below ``unit``) whose input / output *is*
    the layer's (an mmcv ConvModule without norm / activation after it, conv first)."""
    layer, best = trace.modules[path], path
    parent = path.rpartition(".")[0]
    while parent and _inside(parent, unit):
        module = trace.modules[parent]
        if isinstance(module, CONTAINERS):
            break
        if side == "output":
            ok = output_layer(module) is layer
        else:
            ok = input_layer(module) is layer or (isinstance(module, ConvModule) and module.conv is layer
                                                 and module.order[0] == "conv")
        if not ok:
            break
        best, parent = parent, parent.rpartition(".")[0]
    return best


def _level_sites(trace: _Trace) -> list[tuple[str, int]]:
    """(module, channels) inside the neck (or backbone) that produce its output levels;
    the channels are the level's own (a backbone block does not say its count)."""
    root = trace.level_root

    def stop(node):
        paths = trace.outputs.get(node)
        if not paths:
            return None
        inside = [p for p in paths if _inside(p, root) and not isinstance(trace.modules[p], CONTAINERS)]
        if not inside:  # made by the root itself (a functional op: walk on), or from outside it
            return None if paths[0] == root else False
        foldable = [p for p in inside if output_layer(trace.modules[p]) is not None]
        return (foldable or inside)[-1], trace.shapes[node][1]

    return trace.walk(trace.levels, stop)


def _pred_layers(trace: _Trace, roots: list[str]) -> list[str]:
    """The first layer on every path back from the traced outputs, where it is in a head."""
    def stop(node):
        path = trace.producer(node)
        if path is None or not is_layer(trace.modules[path]):
            return None
        return path if _head_unit(trace, path, roots) is not None else False

    return trace.walk(trace.ends, stop)


def _layer_inputs(trace: _Trace, path: str, unit: str) -> tuple[set[str], bool]:
    """(layers of ``unit`` that feed layer ``path``, whether it also reads the unit's input)."""
    reads_input = []

    def stop(node):
        producer = trace.producer(node)
        if producer is None:
            return None
        if not _inside(producer, unit):
            reads_input.append(True)
            return False
        return producer if is_layer(trace.modules[producer]) else None

    feeders = set(trace.walk(trace.inputs.get(path, []), stop))
    return feeders, bool(reads_input)


def _branch_inputs(trace: _Trace, unit: str, preds: list[str]) -> list[str]:
    graph: dict[str, tuple[set[str], bool]] = {}

    def ancestors(path: str) -> set[str]:
        seen, stack = set(), [path]
        while stack:
            item = stack.pop()
            if item in seen:
                continue
            seen.add(item)
            if item not in graph:
                graph[item] = _layer_inputs(trace, item, unit)
            stack.extend(graph[item][0])
        return seen

    found = []
    if isinstance(trace.modules[unit], BaseDenseHead):
        for pred in preds:
            found += [a for a in ancestors(pred) if graph[a][1]]
        return found
    if len(preds) < 2:
        return []
    sets = {pred: ancestors(pred) for pred in preds}
    for pred in preds:
        others = set().union(*(s for p, s in sets.items() if p != pred))
        branch = sets[pred] - others
        if branch == {pred}:
            continue
        found += [layer for layer in branch if not graph[layer][0] & branch]
    return found


def _structural_sites(trace: _Trace) -> dict[str, list[Site]]:
    roots = head_roots(trace.model)
    order = trace.order

    def sites(placement, paths, side):
        unique = sorted(set(paths), key=order.__getitem__)
        return [_site(placement, p, trace.modules[p], side) for p in unique]

    levels = dict(_level_sites(trace)) if trace.level_root else {}
    layers = _pred_layers(trace, roots)
    preds = [_climb(trace, p, _head_unit(trace, p, roots), "output") for p in layers]
    by_unit: dict[str, list[str]] = {}
    for layer in sorted(set(layers), key=order.__getitem__):
        by_unit.setdefault(_head_unit(trace, layer, roots), []).append(layer)
    inputs = []
    for unit, unit_preds in by_unit.items():
        inputs += [_climb(trace, p, unit, "input") for p in _branch_inputs(trace, unit, unit_preds)]
    fpn = [Site("fpn", path, "output", levels[path], 1) for path in sorted(levels, key=order.__getitem__)]
    return dict(fpn=fpn, pred=sites("pred", preds, "output"),
                head_in=sites("head_in", inputs, "input"))


def _initialised_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` after its ``init_weights``, pretrained-weight loading dropped."""
    clone = copy.deepcopy(model)
    for module in clone.modules():
        init_cfg = getattr(module, "init_cfg", None)
        items = init_cfg if isinstance(init_cfg, list) else [init_cfg]
        if any(isinstance(c, dict) and c.get("type") == "Pretrained" for c in items):
            module.init_cfg = None
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel("ERROR")  # init_weights logs every parameter at INFO
    try:
        with torch.random.fork_rng(devices=[]):
            clone.init_weights()
    finally:
        logger.setLevel(level)
    return clone


def _or_none(resolve, model: nn.Module) -> list[Site]:
    """A fallback rule's sites, or none where the named layer does not say its channels."""
    try:
        return resolve(model)
    except PlacementError:
        return []


def _signature(model: nn.Module) -> tuple:
    return tuple(id(m) for m in model.modules() if not _is_implicit(m))


def resolution_of(model: nn.Module) -> Resolution:
    """The structural resolution of ``model`` (traced once per model, then cached)."""
    signature = _signature(model)
    cached = _RESOLUTIONS.get(model)
    if cached is not None and cached[0] == signature:
        return cached[1]
    errors = []
    resolution = None
    attempts = [(m, s, False) for m in ("loss", "tensor") for s in TRACE_SIZES] + [("loss", TRACE_SIZES[-1], True)]
    for mode, size, initialised in attempts:
        # last: a copy with the detector's own init (torch's default can give e.g. Sparse R-CNN
        # proposals of negative size); its module paths and layers are the model's
        subject = _initialised_copy(model) if initialised else model
        trace = _Trace(subject)
        try:
            with _restoring(subject):
                trace.run(mode, size)
                found = _structural_sites(trace)
        except Exception as err:  # noqa: BLE001 - any failure falls back; the reason is kept
            text = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
            errors.append(f"{mode} mode at {size}px{' (initialised copy)' if initialised else ''}: "
                          f"{type(err).__name__}: {text}")
            continue
        finally:
            del trace
        if initialised:
            found = {name: [_site(s.placement, s.path, model.get_submodule(s.path), s.side) for s in sites]
                     for name, sites in found.items()}
        resolution = Resolution(mode + (" (initialised copy)" if initialised else ""), found,
                                "; ".join(errors) or None)
        break
    if resolution is None:
        resolution = Resolution("names", {name: _or_none(resolve, model) for name, resolve in (
            ("fpn", _fpn_by_name), ("pred", _pred_by_name), ("head_in", _head_in_by_name))}, "; ".join(errors))
    _RESOLUTIONS[model] = (signature, resolution)
    return resolution


def _fpn(model: nn.Module) -> list[Site]:
    return list(resolution_of(model).sites["fpn"])


def _pred(model: nn.Module) -> list[Site]:
    return list(resolution_of(model).sites["pred"])


def _head_in(model: nn.Module) -> list[Site]:
    return list(resolution_of(model).sites["head_in"])


# ---------------------------------------------------------------- by name (the fallback)

def _fpn_by_name(model: nn.Module) -> list[Site]:
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


def _pred_by_name(model: nn.Module) -> list[Site]:
    sites = []
    for prefix, head in _heads(model):
        for name in PRED_LAYER_NAMES:
            layer = getattr(head, name, None)
            if isinstance(layer, nn.Module) and channels_of(layer, "output"):
                sites.append(_site("pred", f"{prefix}.{name}", layer, "output"))
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
                    sites.append(_site("pred", path, layer, "output"))
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


def _head_in_by_name(model: nn.Module) -> list[Site]:
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
