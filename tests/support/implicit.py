"""Small real mmdet models and synthetic batches for the implicit tests (CPU, seconds)."""
from __future__ import annotations

import copy
from functools import lru_cache

import numpy as np
import torch

from support.paths import REPO

# One config per family (the 3x Sparse R-CNN row has the 1x row's model but 300 proposals).
FAMILIES = {
    "faster_rcnn": "yolor_faster-rcnn_r50_fpn_1x_coco.py",
    "mask_rcnn": "yolor_mask-rcnn_r50_fpn_1x_coco.py",
    "fcos": "yolor_fcos_r50-caffe_fpn_gn-head_1x_coco.py",
    "atss": "yolor_atss_r50_fpn_1x_coco.py",
    "sparse_rcnn": "yolor_sparse-rcnn_r50_fpn_1x_coco.py",
}
NUM_CLASSES = 4


def quiet_mmengine() -> None:
    """MMEngine logs every parameter's init at INFO: keep test output readable."""
    from mmengine.logging import MMLogger

    if not MMLogger.check_instance_created("yolor_implicit_tests"):
        MMLogger.get_instance("yolor_implicit_tests", log_level="WARNING")


def _set_num_classes(node, value):
    if isinstance(node, dict):
        for key in node:
            if key == "num_classes":
                node[key] = value
            else:
                _set_num_classes(node[key], value)
    elif isinstance(node, list):
        for item in node:
            _set_num_classes(item, value)


@lru_cache(maxsize=None)
def _small_model_cfg(family: str) -> dict:
    from mmengine.config import Config

    import yolor_ray.registrations  # noqa: F401  (type='YOLOR' and our parts)

    cfg = Config.fromfile(str(REPO / "configs" / "yolor" / FAMILIES[family]))
    model = cfg.model.to_dict()
    model["backbone"].update(depth=18, init_cfg=None)
    model["neck"]["in_channels"] = [64, 128, 256, 512]
    _set_num_classes(model, NUM_CLASSES)
    # Few proposals and detections: the heads keep their structure, the CPU time shrinks.
    train_cfg, test_cfg = model.get("train_cfg") or {}, model.get("test_cfg") or {}
    if family == "sparse_rcnn":
        model["rpn_head"]["num_proposals"] = 20
        # RoIs of a 64px image would all map to FPN level 0 with the default 56: spread them
        for extractor in (model["roi_head"]["bbox_roi_extractor"],):
            extractor["finest_scale"] = 8
        test_cfg["rcnn"]["max_per_img"] = 20
        for stage in model["roi_head"]["bbox_head"]:  # 8M instead of 50M parameters in the six DII heads
            stage["feedforward_channels"] = 256
            stage["dynamic_conv_cfg"]["feat_channels"] = 16
    elif "rpn" in test_cfg:
        train_cfg["rpn_proposal"].update(nms_pre=200, max_per_img=50)
        train_cfg["rcnn"]["sampler"]["num"] = 32
        test_cfg["rpn"].update(nms_pre=200, max_per_img=50)
        test_cfg["rcnn"]["max_per_img"] = 20
    else:
        test_cfg.update(nms_pre=200, max_per_img=20)
    return model


def small_cfg(family: str, implicit: dict | None = None, yolor: bool = True) -> dict:
    """The family's YOLOR model config at a small scale (ResNet-18, 4 classes, no init files)."""
    model = copy.deepcopy(_small_model_cfg(family))
    if not yolor:
        model.pop("implicit")
        model["type"] = model.pop("detector")
    elif implicit is not None:
        model["implicit"] = implicit
    return model


def build(model_cfg: dict, seed: int = 0, init_weights: bool = False):
    """Build with mmdet's registry; torch's default init unless ``init_weights`` (slow on CPU)."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    quiet_mmengine()
    torch.manual_seed(seed)
    from mmengine.config import ConfigDict

    model = MODELS.build(ConfigDict(copy.deepcopy(model_cfg)))
    if init_weights:
        model.init_weights()
    elif type(getattr(model, "rpn_head", None)).__name__ == "EmbeddingRPNHead":
        model.rpn_head.init_weights()  # Sparse R-CNN: proposals start as the whole image
    return model


def raw_batch(size: int = 64, num_images: int = 2, seed: int = 0, masks: bool = False) -> dict:
    """A batch as a dataloader gives it: uint8 images, samples with two boxes each."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData

    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(num_images):
        inputs.append((torch.rand(3, size, size, generator=gen) * 255).to(torch.uint8))
        boxes = torch.tensor([[4.0, 6.0, size * 0.6, size * 0.7], [size * 0.3, size * 0.2, size - 3.0, size - 5.0]])
        gt = InstanceData(bboxes=boxes, labels=torch.tensor([1, 2]))
        if masks:
            bitmap = np.zeros((2, size, size), dtype=np.uint8)
            for i, (x1, y1, x2, y2) in enumerate(boxes.int().tolist()):
                bitmap[i, y1:y2, x1:x2] = 1
            gt.masks = BitmapMasks(bitmap, size, size)
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size), scale_factor=(1.0, 1.0),
                                             img_id=len(samples)))
        sample.gt_instances = gt
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def batch(model, size: int = 64, num_images: int = 2, seed: int = 0, training: bool = True, masks: bool = False):
    """A preprocessed synthetic batch (see raw_batch)."""
    return model.data_preprocessor(raw_batch(size, num_images, seed, masks), training=training)


def flat_outputs(model, data) -> torch.Tensor:
    """Every tensor of the model's 'tensor' mode output, flattened and concatenated.

    Boxes in pixels (Sparse R-CNN's decoded boxes, proposals) are divided by the image
    size, so a tolerance means the same for them as for scores: a share of the image.
    """
    out = model(data["inputs"], data["data_samples"], mode="tensor")
    size = float(max(data["inputs"].shape[-2:]))
    tensors = []

    def walk(node, pixels=False):
        if isinstance(node, torch.Tensor):
            tensors.append(node.detach().reshape(-1).float() / (size if pixels else 1.0))
        elif isinstance(node, (list, tuple)):
            for item in node:
                walk(item, pixels)
        elif isinstance(node, dict):
            for key in sorted(node):
                walk(node[key], pixels or "bboxes" in key)
        elif hasattr(node, "bboxes"):  # InstanceData (proposals)
            walk(node.bboxes, True)

    walk(out)
    return torch.cat(tensors)
