"""Synthetic COCO annotations and detections at any scale (COCO val's: 5,000 images, 80 classes,
about 36,800 boxes, 100 detections per image), for measuring and checking COCO evaluation
(bench/coco_eval.py, tests/test_coco_metric.py). Seeded: same arguments, same data."""
from __future__ import annotations

import numpy as np

WIDTH, HEIGHT, CLASSES = 640, 480, 80
POLYGON_POINTS = 12


def _polygons(x, y, w, h, rng) -> np.ndarray:
    """An ellipse-like polygon inside each box (x, y, w, h arrays): shape (n, 2 * POLYGON_POINTS)."""
    angles = np.linspace(0, 2 * np.pi, POLYGON_POINTS, endpoint=False)
    radius = rng.uniform(0.75, 1.0, size=(len(x), POLYGON_POINTS))
    px = x[:, None] + w[:, None] / 2 * (1 + radius * np.cos(angles))
    py = y[:, None] + h[:, None] / 2 * (1 + radius * np.sin(angles))
    return np.stack([px, py], axis=2).reshape(len(x), 2 * POLYGON_POINTS).round(2)


def _boxes(count: int, rng, width: float, height: float) -> np.ndarray:
    """(x, y, w, h) rows: side log-uniform from 6 to 400 px (COCO's mix of small, medium and large),
    aspect ~ e^N(0, 0.5)."""
    side = np.exp(rng.uniform(np.log(6), np.log(400), count))
    aspect = np.exp(rng.normal(0, 0.5, count))
    w = np.minimum(side * np.sqrt(aspect), width - 1)
    h = np.minimum(side / np.sqrt(aspect), height - 1)
    x = rng.uniform(0, width - w)
    y = rng.uniform(0, height - h)
    return np.stack([x, y, w, h], axis=1)


def synthetic_gt(images: int, boxes_per_image: float = 7.36, seed: int = 0) -> dict:
    """A COCO-format dataset (dict) of ``images`` 640x480 images, 80 classes (skewed, as COCO's)."""
    rng = np.random.default_rng(seed)
    class_p = 1 / np.arange(1, CLASSES + 1) ** 0.8
    class_p /= class_p.sum()
    annotations = []
    for image_id in range(1, images + 1):
        n = rng.poisson(boxes_per_image)
        boxes = _boxes(n, rng, WIDTH, HEIGHT).round(2)
        polygons = _polygons(*boxes.T, rng)
        classes = rng.choice(CLASSES, size=n, p=class_p) + 1
        crowd = rng.random(n) < 0.01
        for k in range(n):
            annotations.append(dict(id=len(annotations) + 1, image_id=image_id, category_id=int(classes[k]),
                                    bbox=boxes[k].tolist(), area=float(boxes[k, 2] * boxes[k, 3] * 0.75),
                                    segmentation=[polygons[k].tolist()], iscrowd=int(crowd[k])))
    return dict(images=[dict(id=i, file_name=f"{i:012d}.jpg", width=WIDTH, height=HEIGHT)
                        for i in range(1, images + 1)],
                annotations=annotations,
                categories=[dict(id=c, name=f"class{c:02d}", supercategory="thing") for c in range(1, CLASSES + 1)])


def synthetic_detections(gt: dict, per_image: int = 100, seed: int = 1) -> tuple[list[dict], list[dict]]:
    """Detections of ``gt``'s images, ``per_image`` each, as CocoMetric dumps them: the box list
    (xywh) and the mask list (RLE, no box). 1-3 near copies of each box (10% of another class),
    the rest scattered; float32 scores and coordinates, so ties happen as with a real detector."""
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed)
    cat_ids = [c["id"] for c in gt["categories"]]
    by_image: dict[int, list] = {img["id"]: [] for img in gt["images"]}
    for ann in gt["annotations"]:
        by_image[ann["image_id"]].append(ann)
    bbox_dets, segm_dets = [], []
    for img in gt["images"]:
        width, height, anns = img["width"], img["height"], by_image[img["id"]]
        near = [ann for ann in anns for _ in range(rng.integers(1, 4))][:per_image]
        boxes = np.array([ann["bbox"] for ann in near]).reshape(-1, 4)
        noise = rng.normal(0, rng.uniform(0.02, 0.3, size=(len(near), 1)), size=(len(near), 4))
        boxes = boxes + noise * np.concatenate([boxes[:, 2:], boxes[:, 2:]], axis=1)
        classes = np.array([ann["category_id"] for ann in near], dtype=int)
        other = rng.random(len(near)) < 0.1
        classes[other] = rng.choice(cat_ids, size=int(other.sum()))
        scores = rng.beta(4, 2, len(near))
        scattered = per_image - len(near)
        boxes = np.concatenate([boxes, _boxes(scattered, rng, width, height)])
        classes = np.concatenate([classes, rng.choice(cat_ids, size=scattered)])
        scores = np.concatenate([scores, rng.beta(1.5, 5, scattered)]).astype(np.float32)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], 1.0)
        boxes = boxes.astype(np.float32).astype(float)
        rles = mask_utils.frPyObjects(_polygons(*boxes.T, rng).tolist(), height, width)  # one RLE per polygon
        for k in range(len(boxes)):
            common = dict(image_id=img["id"], category_id=int(classes[k]), score=float(scores[k]))
            bbox_dets.append(dict(common, bbox=boxes[k].tolist()))
            segm_dets.append(dict(common, segmentation=dict(size=rles[k]["size"], counts=rles[k]["counts"].decode())))
    return bbox_dets, segm_dets
