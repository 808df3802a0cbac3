"""Run a detector once on a synthetic batch and record its autograd graph, module by module.

The graph rules (:mod:`yolor_ray.implicit.rules`) read which modules produce the neck's
outputs and which layers feed the loss from what :class:`Trace` records; running the
detector changes nothing of it: :func:`restoring` puts back its batch-norm statistics,
training flags, attributes and random state.
"""
from __future__ import annotations

import copy
import random
from contextlib import contextmanager

import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.logging import MessageHub, MMLogger
from mmengine.structures import InstanceData, PixelData
from torch import nn

from yolor_ray.implicit.modules import Implicit
from yolor_ray.implicit.sites import is_layer


def is_implicit(module: nn.Module) -> bool:
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
def restoring(model: nn.Module):
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


class Trace:
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
                if not path or is_implicit(module):
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


def initialised_copy(model: nn.Module) -> nn.Module:
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

