"""What validation's COCO evaluation costs at COCO val's scale, with pycocotools' COCOeval and
with faster-coco-eval's (the project's metric uses the latter when installed), and whether
the two agree.

    python -m bench.coco_eval [--images 5000] [--boxes-per-image 7.36] [--detections 100]

A synthetic val split of COCO val2017's size (5,000 images of 640x480, 80 classes, about
36,800 boxes with polygons, 1% crowd, COCO's mix of small, medium and large) and 100
detections per image (near copies of each box, some of another class, the rest scattered;
scores and coordinates float32, as a detector gives them; masks as RLE). Each evaluation runs
in a fresh process as mmdet's CocoMetric runs it (loadRes, then COCOeval with CocoMetric's
parameters: maxDets 100/300/1000): wall time of COCOeval (evaluate, accumulate, summarize),
the process's peak RSS, and the 12 stats. Goal: pycocotools / faster >= 2 for boxes, every
stat equal to 1e-6.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import REPO, WORK, log, positive_int, write_result

GOAL_RATIO, TOLERANCE = 2.0, 1e-6
WIDTH, HEIGHT, CLASSES = 640, 480, 80
POLYGON_POINTS = 12


def _polygons(x, y, w, h, rng) -> np.ndarray:
    """An ellipse-like polygon inside each box (x, y, w, h arrays): shape (n, 2 * POLYGON_POINTS)."""
    angles = np.linspace(0, 2 * np.pi, POLYGON_POINTS, endpoint=False)
    radius = rng.uniform(0.75, 1.0, size=(len(x), POLYGON_POINTS))
    px = x[:, None] + w[:, None] / 2 * (1 + radius * np.cos(angles))
    py = y[:, None] + h[:, None] / 2 * (1 + radius * np.sin(angles))
    return np.stack([px, py], axis=2).reshape(len(x), -1).round(2)


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


def evaluate(gt, detections: list[dict], iou_type: str, backend: str):
    """COCOeval of one backend on ``detections`` with CocoMetric's parameters; returns it, run."""
    import contextlib
    import copy
    import io

    from yolor_ray.engine.coco_metric import coco_eval_class

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints as it goes
        coco_dt = gt.loadRes(copy.deepcopy(detections))
        coco_eval = coco_eval_class(backend)(gt, coco_dt, iou_type)
        coco_eval.params.catIds = gt.get_cat_ids()
        coco_eval.params.imgIds = gt.get_img_ids()
        coco_eval.params.maxDets = [100, 300, 1000]  # CocoMetric's proposal_nums
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval


CHILD = """
import contextlib, io, json, resource, sys, time
from mmdet.datasets.api_wrappers import COCO
from yolor_ray.engine.coco_metric import coco_eval_class

gt_file, dets_file, iou_type, backend = sys.argv[1:5]
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(gt_file)
    detections = json.load(open(dets_file))
    start = time.perf_counter()
    coco_dt = gt.loadRes(detections)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    coco_eval = coco_eval_class(backend)(gt, coco_dt, iou_type)
    coco_eval.params.catIds = gt.get_cat_ids()
    coco_eval.params.imgIds = gt.get_img_ids()
    coco_eval.params.maxDets = [100, 300, 1000]
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    eval_s = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(dict(backend=backend, task=iou_type, eval_s=round(eval_s, 2), load_res_s=round(load_s, 2),
                      peak_rss_bytes=peak, stats=[float(s) for s in coco_eval.stats[:12]])))
"""


def measure(gt_file: Path, dets_file: Path, task: str, backend: str) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(gt_file), str(dets_file), task, backend], cwd=REPO,
                          capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{backend} {task} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    log(f"{task} {backend}: COCOeval {result['eval_s']:.1f} s (loadRes {result['load_res_s']:.1f} s), "
        f"peak {result['peak_rss_bytes'] / 1e9:.2f} GB")
    return result


def make_files(root: Path, images: int, boxes_per_image: float, per_image: int) -> dict:
    """gt.json, bbox.json and segm.json under ``root``, made once per settings."""
    files = dict(gt=root / "gt.json", bbox=root / "bbox.json", segm=root / "segm.json")
    if all(path.is_file() for path in files.values()):
        return files
    root.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    gt = synthetic_gt(images, boxes_per_image)
    bbox_dets, segm_dets = synthetic_detections(gt, per_image)
    for key, data in (("bbox", bbox_dets), ("segm", segm_dets), ("gt", gt)):  # gt last: it marks the set whole
        tmp = files[key].with_suffix(".tmp")
        tmp.write_text(json.dumps(data, separators=(",", ":")))
        tmp.replace(files[key])
    log(f"data made in {time.monotonic() - start:.0f} s: {images} images, {len(gt['annotations'])} boxes, "
        f"{len(bbox_dets)} detections")
    return files


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=positive_int, default=5000)
    parser.add_argument("--boxes-per-image", type=float, default=7.36)  # val2017: 36,781 boxes / 5,000 images
    parser.add_argument("--detections", type=positive_int, default=100)
    args = parser.parse_args(argv)

    root = WORK / f"coco-eval-{args.images}-{args.boxes_per_image}-{args.detections}"
    files = make_files(root, args.images, args.boxes_per_image, args.detections)
    gt_boxes = len(json.loads(files["gt"].read_text())["annotations"])
    runs, tasks = {}, {}
    for task in ("bbox", "segm"):
        runs[task] = {backend: measure(files["gt"], files[task], task, backend)
                      for backend in ("pycocotools", "faster")}
        slow, fast = runs[task]["pycocotools"], runs[task]["faster"]
        tasks[task] = dict(ratio=round(slow["eval_s"] / fast["eval_s"], 2),
                           max_stat_difference=max(abs(a - b) for a, b in zip(slow["stats"], fast["stats"])))
        log(f"{task}: pycocotools / faster = {tasks[task]['ratio']:.2f}, largest stat difference "
            f"{tasks[task]['max_stat_difference']:.1e}")
    write_result("coco_eval", dict(
        inputs=dict(images=args.images, gt_boxes=gt_boxes, classes=CLASSES, detections_per_image=args.detections,
                    image_size=[WIDTH, HEIGHT], max_dets=[100, 300, 1000]),
        runs=runs, tasks=tasks, goal=dict(bbox_ratio=GOAL_RATIO, tolerance=TOLERANCE),
        met=dict(bbox_ratio=tasks["bbox"]["ratio"] >= GOAL_RATIO,
                 exact={task: t["max_stat_difference"] <= TOLERANCE for task, t in tasks.items()})))


if __name__ == "__main__":
    main()
