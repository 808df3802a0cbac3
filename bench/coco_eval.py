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
the process's peak RSS and its RSS before COCOeval (the data's), and the 12 stats. Goal:
pycocotools / faster >= 2 for boxes, every stat equal to 1e-6.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench.common import REPO, WORK, log, positive_int, write_result
from yolor_ray.data.synthetic_coco import CLASSES, HEIGHT, WIDTH, synthetic_detections, synthetic_gt

GOAL_RATIO, TOLERANCE = 2.0, 1e-6


# The child imports no torch or mmdet (mmdet's COCOeval is pycocotools' own): its peak RSS is
# the data's and the evaluation's. ``rss_before_eval_bytes``: after loading, before COCOeval.
CHILD = """
import contextlib, io, json, resource, sys, time
from pycocotools.coco import COCO

gt_file, dets_file, iou_type, backend = sys.argv[1:5]
if backend == "faster":
    from faster_coco_eval import COCOeval_faster as COCOeval
else:
    from pycocotools.cocoeval import COCOeval
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(gt_file)
    detections = json.load(open(dets_file))
    start = time.perf_counter()
    coco_dt = gt.loadRes(detections)
    load_s = time.perf_counter() - start
    del detections
    with open("/proc/self/statm") as f:
        before = int(f.read().split()[1]) * resource.getpagesize()
    start = time.perf_counter()
    coco_eval = COCOeval(gt, coco_dt, iou_type)
    coco_eval.params.catIds = sorted(gt.getCatIds())
    coco_eval.params.imgIds = sorted(gt.getImgIds())
    coco_eval.params.maxDets = [100, 300, 1000]
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    eval_s = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(dict(backend=backend, task=iou_type, eval_s=round(eval_s, 2), load_res_s=round(load_s, 2),
                      rss_before_eval_bytes=before, peak_rss_bytes=peak,
                      stats=[float(s) for s in coco_eval.stats[:12]])))
"""


def measure(gt_file: Path, dets_file: Path, task: str, backend: str) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(gt_file), str(dets_file), task, backend], cwd=REPO,
                          capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{backend} {task} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    log(f"{task} {backend}: COCOeval {result['eval_s']:.1f} s (loadRes {result['load_res_s']:.1f} s), "
        f"peak {result['peak_rss_bytes'] / 1e9:.2f} GB ({result['rss_before_eval_bytes'] / 1e9:.2f} GB before it)")
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
    parser.add_argument("--note", help="what else ran on the machine meanwhile, kept with the figures")
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
                    image_size=[WIDTH, HEIGHT], max_dets=[100, 300, 1000], note=args.note),
        runs=runs, tasks=tasks, goal=dict(bbox_ratio=GOAL_RATIO, tolerance=TOLERANCE),
        met=dict(bbox_ratio=tasks["bbox"]["ratio"] >= GOAL_RATIO,
                 exact={task: t["max_stat_difference"] <= TOLERANCE for task, t in tasks.items()})))


if __name__ == "__main__":
    main()
