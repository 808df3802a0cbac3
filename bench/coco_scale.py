"""What a COCO-size dataset costs the driver before any cluster time: ``prepare_run`` and
``prepare_sweep`` (8 trials) on an annotation file of COCO train2017's size.

    python -m bench.coco_scale [--images 118287] [--boxes 860001]

The train split lists 118,287 images and 860,001 boxes with polygons (COCO train2017's
counts, 80 categories); only the images the up-front check samples exist on disk (the
check looks at a sample plus the count: ``yolor_ray.data.coco.IMAGE_SAMPLE``). Each
measurement runs in a fresh process: wall time, peak RSS, and how often an annotation
file was parsed. Goal: a run <= 30 s and <= 3 GB peak; a sweep of 8 trials no more
than a run.
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

CONFIG = REPO / "configs" / "baseline" / "atss_r50_fpn_1x_coco.py"
GOAL_S, GOAL_GB = 30.0, 3.0
POLYGON_POINTS = 24  # about 400 MB of train annotations (train2017's file: 448 MB)


def make_coco_size(root: Path, images: int, boxes: int, val_images: int = 500, seed: int = 0) -> Path:
    """A COCO-layout folder with ``images`` / ``boxes`` in train; files only for the sampled images."""
    from PIL import Image

    from yolor_ray.data.coco import annotation_file, image_sample

    marker, settings = root / ".complete", dict(images=images, boxes=boxes, seed=seed, points=POLYGON_POINTS)
    if marker.is_file() and json.loads(marker.read_text()) == settings:
        return root
    rng = np.random.default_rng(seed)
    categories = [dict(id=i, name=f"class{i:02d}", supercategory="thing") for i in range(1, 81)]
    for split, count, box_count in (("train", images, boxes), ("val", val_images, val_images * boxes // images)):
        log(f"writing {split}: {count} images, {box_count} boxes")
        entries = [dict(id=i, file_name=f"{i:012d}.jpg", width=640, height=480) for i in range(count)]
        image_ids = rng.integers(0, count, size=box_count)
        xy = rng.uniform(0, 400, size=(box_count, 2)).round(2)
        wh = rng.uniform(4, 200, size=(box_count, 2)).round(2)
        angles = np.linspace(0, 2 * np.pi, POLYGON_POINTS, endpoint=False)
        lines = []
        for k in range(box_count):
            (x, y), (w, h) = xy[k], wh[k]
            polygon = np.stack([x + w / 2 * (1 + np.cos(angles)), y + h / 2 * (1 + np.sin(angles))], 1).round(2)
            lines.append(json.dumps(dict(id=k + 1, image_id=int(image_ids[k]), category_id=int(k % 80) + 1,
                                         bbox=[float(x), float(y), float(w), float(h)], area=round(float(w * h), 2),
                                         segmentation=[polygon.reshape(-1).tolist()], iscrowd=0),
                                    separators=(",", ":")))
        ann = annotation_file(root, split)
        ann.parent.mkdir(parents=True, exist_ok=True)
        with open(ann, "w") as f:
            f.write('{"images":' + json.dumps(entries, separators=(",", ":")) + ',"annotations":[')
            f.write(",".join(lines))
            f.write('],"categories":' + json.dumps(categories) + "}")
        folder = root / split
        folder.mkdir(exist_ok=True)
        for entry in image_sample(entries):
            Image.new("RGB", (64, 48), (90, 120, 150)).save(folder / entry["file_name"])
    marker.write_text(json.dumps(settings))
    return root


CHILD = """
import json, resource, sys, time
from pathlib import Path
import yolor_ray.data.coco as data
from yolor_ray.storage import StorageSpec
from yolor_ray.train.spec import RunSettings

parses = []
inspect = data.inspect_coco_split
def counted(root, split, *args, **kwargs):
    parses.append(split)
    return inspect(root, split, *args, **kwargs)
data.inspect_coco_split = counted

which, config, root, storage = sys.argv[1:5]
settings = RunSettings(data_root=Path(root), storage=StorageSpec(storage))
spec = settings.for_run(Path(config), "coco-scale")
start = time.perf_counter()
if which == "run":
    from yolor_ray.train.prepare import prepare_run
    prepared = prepare_run(spec)
    trials = 1
else:
    from yolor_ray.tune.space_parse import DEFAULT_SPACE
    from yolor_ray.tune.spec import SweepSpec
    from yolor_ray.tune.sweep import prepare_sweep
    prepared = prepare_sweep(SweepSpec(config=Path(config), train=settings, space=DEFAULT_SPACE,
                                       name="coco-scale-sweep", trials=8))
    trials = 8
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(dict(what=which, trials=trials, wall_s=round(wall, 2), peak_rss_bytes=peak, parses=parses)))
"""


def measure(which: str, root: Path, storage: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, which, str(CONFIG), str(root), str(storage)], cwd=REPO,
                          capture_output=True, text=True, timeout=1200)
    if done.returncode != 0:
        raise RuntimeError(f"{which} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    log(f"{which}: {result['wall_s']:.1f} s, peak {result['peak_rss_bytes'] / 1e9:.2f} GB, "
        f"annotation files parsed: {len(result['parses'])}")
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=positive_int, default=118287)
    parser.add_argument("--boxes", type=positive_int, default=860001)
    args = parser.parse_args(argv)

    root = WORK / f"coco-size-{args.images}-{args.boxes}"
    start = time.monotonic()
    make_coco_size(root, args.images, args.boxes)
    ann_bytes = (root / "annotations" / "instances_train.json").stat().st_size
    log(f"dataset ready in {time.monotonic() - start:.0f} s ({ann_bytes / 1e6:.0f} MB train annotations)")
    storage = WORK / "coco-scale-results"
    run = measure("run", root, storage)
    sweep = measure("sweep", root, storage)
    write_result("coco_scale", dict(
        inputs=dict(config=str(CONFIG.relative_to(REPO)), images=args.images, boxes=args.boxes,
                    train_annotation_bytes=ann_bytes, polygon_points=POLYGON_POINTS),
        run=run, sweep=sweep,
        goal=dict(run_wall_s=GOAL_S, run_peak_gb=GOAL_GB, sweep_no_more_than_run=True),
        met=dict(run_wall=run["wall_s"] <= GOAL_S, run_memory=run["peak_rss_bytes"] <= GOAL_GB * 1e9,
                 sweep_parses_once=len(sweep["parses"]) == len(run["parses"]),
                 sweep_memory=sweep["peak_rss_bytes"] <= GOAL_GB * 1e9)))


if __name__ == "__main__":
    main()
