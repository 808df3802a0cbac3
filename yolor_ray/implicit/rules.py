"""The graph rules: the sites of ``fpn``, ``pred`` and ``head_in`` read from a traced detector.

They follow the autograd graph that :class:`~yolor_ray.implicit.trace.Trace` recorded
rather than attribute names, so that necks and heads of any class are found
(docs/implicit.md has each rule with the families it was checked on).
"""
from __future__ import annotations

from mmcv.cnn import ConvModule
from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
from torch import nn

from yolor_ray.implicit.layers import input_layer, output_layer
from yolor_ray.implicit.sites import Site, is_layer, make_site
from yolor_ray.implicit.trace import Trace

CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def _inside(path: str, root: str) -> bool:
    return bool(root) and path.startswith(root + ".")


def head_roots(model: nn.Module) -> list[str]:
    """The detector's heads: its children whose class name ends in ``Head`` or whose
    attribute name says ``head`` (``rpn_head``, ``bbox_head``, ``roi_head`` ...)."""
    roots = []
    for name, child in model.named_children():
        if name in ("backbone", "neck", "data_preprocessor"):
            continue
        if type(child).__name__.endswith("Head") or "head" in name:
            roots.append(name)
    return roots


def _head_unit(trace: Trace, path: str, roots: list[str]) -> str | None:
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


def _climb(trace: Trace, path: str, unit: str, side: str) -> str:
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


def _level_sites(trace: Trace) -> list[tuple[str, int]]:
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


def _pred_layers(trace: Trace, roots: list[str]) -> list[str]:
    """The first layer on every path back from the traced outputs, where it is in a head."""
    def stop(node):
        path = trace.producer(node)
        if path is None or not is_layer(trace.modules[path]):
            return None
        return path if _head_unit(trace, path, roots) is not None else False

    return trace.walk(trace.ends, stop)


def _layer_inputs(trace: Trace, path: str, unit: str) -> tuple[set[str], bool]:
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


def _branch_inputs(trace: Trace, unit: str, preds: list[str]) -> list[str]:
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


def structural_sites(trace: Trace) -> dict[str, list[Site]]:
    """The sites of ``fpn``, ``pred`` and ``head_in`` on the traced detector.

    ``fpn``: the module that produces each output level of the neck (of the backbone
    without one), walking back through parameter-free ops (FPN's max-pooled P6 so sees
    P5's conv). ``pred``: walking back from every loss term, the first conv / linear
    layer met on each path (through losses, ``Scale``, activations, box decoding) that
    lies in a head: the last layer of each classification / regression / centerness /
    objectness / mask branch, in every stage and decoder layer. ``head_in``: in a dense
    head, the input of the first layer on every path from the head's input to its
    prediction layers; in an RoI or query head, of the first layer of each branch that
    splits off the shared trunk before its prediction layer (none where the prediction
    layers read the trunk directly, or the head has one prediction). A layer shared by
    several levels or decoder layers is one module, so one site.
    """
    roots = head_roots(trace.model)
    order = trace.order

    def sites(placement, paths, side):
        unique = sorted(set(paths), key=order.__getitem__)
        return [make_site(placement, p, trace.modules[p], side) for p in unique]

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
